"""Classifier heads and input stems for transfer learning (re-exported by :mod:`cnnlab.train.transfer`).

* :func:`configure_head`: ``--head linear|mlp|logreg`` (idempotent, so ``load_run`` rebuilds the same).
* :func:`adapt_in_chans`: grey data into an RGB-pretrained net. We adapt the first convolution (timm's
  ``adapt_input_conv``: the RGB kernels summed) rather than repeating the channel in the data: one
  channel in memory instead of three, and the model, its summary and its CAMs see the real input.
  Normalise with :func:`gray_mean_std`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from ..errors import ModelError

__all__ = ["MLPHead", "adapt_in_chans", "configure_head", "gray_mean_std"]


def _head(model: nn.Module) -> nn.Module:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module):
        raise ModelError(f"{type(model).__name__} has no .head module; transfer learning needs a cnnlab "
                         "model")
    return head


class MLPHead(nn.Sequential):
    """``--head mlp``: ``Linear(in, hidden) -> ReLU -> Dropout -> Linear(hidden, num_classes)``."""

    def __init__(self, in_features: int, num_classes: int, *, hidden: int = 512,
                 dropout: float = 0.5) -> None:
        super().__init__(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))
        self.in_features = in_features


def _replace_child(model: nn.Module, old: nn.Module, new: nn.Module) -> None:
    if model.head is old:
        model.head = new
        return
    for m in _head(model).modules():
        for name, child in m.named_children():
            if child is old:
                setattr(m, name, new)
                return


def configure_head(model: nn.Module, *, kind: str = "linear", num_classes: int, hidden: int = 512,
                   dropout: float = 0.5) -> None:
    """Give ``model`` a fresh classifier: ``linear``, ``mlp`` or ``logreg``. Idempotent.

    ``linear`` keeps the head's structure (``reset_classifier``); ``mlp`` replaces the last linear
    layer by an :class:`MLPHead`; ``logreg`` makes the head its pooling prefix plus one linear layer
    on the embeddings (a course head ``flatten -> fc1 -> relu -> fc`` becomes ``flatten -> fc``), the
    shape a logistic regression fills. Calling it again (e.g. when rebuilding a model from a run
    folder) gives the same structure, so the saved state dict loads.

    Args:
        model: A cnnlab model with ``reset_classifier`` and ``classifier_layer``.
        kind: ``linear``, ``mlp`` or ``logreg``.
        num_classes: Outputs of the new classifier.
        hidden: Width of the ``mlp`` hidden layer.
        dropout: Dropout probability of the ``mlp`` head.
    """
    from .config import Head

    kind = Head(kind)
    _head(model)
    for m in list(_head(model).modules()):
        if isinstance(m, MLPHead):  # undo an earlier mlp head first
            _replace_child(model, m, nn.Linear(m.in_features, num_classes))
            break
    cast(Any, model).reset_classifier(num_classes)
    if kind is Head.LOGREG:
        _single_linear_head(model, num_classes)
    if kind is Head.MLP:
        old = cast(Any, model).classifier_layer()
        _replace_child(model, old, MLPHead(old.in_features, num_classes, hidden=hidden, dropout=dropout))


def _single_linear_head(model: nn.Module, num_classes: int) -> None:
    from collections import OrderedDict

    from .embeddings import split_head

    prefix, rest = split_head(model)
    linears = [m for m in rest.modules() if isinstance(m, nn.Linear)]
    if len(linears) == 1:
        return
    head = _head(model)
    if not isinstance(head, nn.Sequential) or not linears:
        raise ModelError(f"--head logreg: cannot reduce the head of {type(model).__name__} to one linear "
                         "layer; use --head linear or mlp")
    keep = list(head.named_children())[: len(cast(nn.Sequential, prefix))]
    model.head = nn.Sequential(OrderedDict([*keep, ("fc", nn.Linear(linears[0].in_features, num_classes))]))


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise ModelError(f"{type(model).__name__} has no Conv2d layer to adapt to the input channels")


def adapt_in_chans(model: nn.Module, in_chans: int) -> str | None:
    """Adapt the first convolution of an RGB-pretrained model to ``in_chans`` input channels.

    We adapt the stem rather than repeating the grey channel in the data pipeline: one channel in
    memory instead of three, and the model, its summary and its CAMs all see the real input. The
    weights are converted by timm's ``adapt_input_conv`` (grey: sum over RGB, so a grey image gives the
    response an RGB image of equal channels would). Normalise grey input with the mean of the RGB
    means/stds (:func:`gray_mean_std`).

    Args:
        model: The model (modified in place).
        in_chans: Channels of the data.

    Returns:
        A one-line notice for the user, or ``None`` when nothing had to change.
    """
    from timm.models._manipulate import adapt_input_conv

    name, conv = _first_conv(model)
    if conv.in_channels == in_chans:
        return None
    old = conv.in_channels
    with torch.no_grad():
        weight = adapt_input_conv(in_chans, conv.weight.detach(), base_chans=old)
    conv.weight = nn.Parameter(weight, requires_grad=conv.weight.requires_grad)
    conv.in_channels = in_chans
    return (
        f"input has {in_chans} channel(s), the weights expect {old}: adapted the first convolution "
        f"({name}) with timm's adapt_input_conv"
    )


def gray_mean_std(
    mean: Sequence[float], std: Sequence[float], in_chans: int
) -> tuple[tuple[float, ...], ...]:
    """Normalisation constants for ``in_chans`` channels derived from RGB ones (averaged for grey)."""
    if len(mean) == in_chans:
        return tuple(mean), tuple(std)
    if in_chans == 1:
        return (sum(mean) / len(mean),), (sum(std) / len(std),)
    return tuple(mean[i % len(mean)] for i in range(in_chans)), tuple(
        std[i % len(std)] for i in range(in_chans)
    )
