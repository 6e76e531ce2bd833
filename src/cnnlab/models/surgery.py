"""Model surgery: the one place that edits a built model (DESIGN.md, "surgery.py").

Everything that finds, cuts or replaces a part of a network lives here, so transfer learning, the
embedding cache, CAM and the model builders all edit models the same way:

* heads: :func:`get_head`, :func:`classifier_layer` (the last linear layer), :func:`reset_classifier`,
  :func:`configure_head` (``linear`` / ``mlp`` / ``logreg``, :class:`HeadKind`; the ``mlp`` head is
  :class:`~cnnlab.models.blocks.MLPHead`);
* the features/head split for cached embeddings: :func:`split_head`;
* CAM's classifier: :func:`gap_linear_head` (the linear layer of a GAP + linear head, checked);
* stems: :func:`first_conv` and :func:`adapt_in_chans` (grey data into an RGB net and back), and
  :func:`adapt_model` (both ends at once: what the model builders call last);
* :func:`replace_module`: the one loop that swaps a registered sub-module for another.

Every other room may depend on this one. ``torch`` is imported by the functions, not at import time,
so option parsers can read :class:`HeadKind` without loading it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from ..errors import ArgumentError, ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "HeadKind",
    "adapt_in_chans",
    "adapt_model",
    "classifier_layer",
    "configure_head",
    "first_conv",
    "gap_linear_head",
    "get_head",
    "replace_module",
    "reset_classifier",
    "split_head",
]


class HeadKind(StrEnum):
    """Classifier heads :func:`configure_head` builds (``--head`` of ``--transfer features``)."""

    LINEAR = "linear"
    MLP = "mlp"
    LOGREG = "logreg"


def get_head(model: nn.Module) -> nn.Module:
    """``model.head`` (the classifier of the model contract).

    Raises:
        ModelError: The model has no ``head`` module (not a cnnlab model).
    """
    from torch import nn

    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module):
        raise ModelError(f"{type(model).__name__} has no .head module; this needs a cnnlab model")
    return head


def replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    """Register ``new`` wherever ``old`` is registered under ``root`` (the first place found).

    Raises:
        ModelError: ``old`` is not a sub-module of ``root``.
    """
    for parent in root.modules():  # the one child-replacement loop
        for name, child in parent.named_children():
            if child is old:
                setattr(parent, name, new)
                return
    raise ModelError(f"{type(old).__name__} is not a sub-module of {type(root).__name__}")


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` of the head (the layer :func:`reset_classifier` replaces).

    Raises:
        ModelError: The head has no linear layer (a convolutional base without a classifier).
    """
    from torch import nn

    linears = [m for m in get_head(model).modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelError(
            f"{type(model).__name__} is a convolutional base without a classifier (no linear layer in its "
            "head); use a model with a head (e.g. mnist_cnn or mnist_cnn_gap)"
        )
    return linears[-1]


def reset_classifier(model: nn.Module, num_classes: int) -> None:
    """Replace the last linear layer of the head with a fresh one of ``num_classes`` outputs."""
    from torch import nn

    old = classifier_layer(model)
    replace_module(model, old, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))


def configure_head(
    model: nn.Module,
    *,
    kind: HeadKind | str = HeadKind.LINEAR,
    num_classes: int,
    hidden: int = 512,
    dropout: float = 0.5,
) -> None:
    """Give ``model`` a fresh classifier: ``linear``, ``mlp`` or ``logreg``. Idempotent.

    ``linear`` keeps the head's structure (``reset_classifier``); ``mlp`` replaces the last linear
    layer by an :class:`MLPHead`; ``logreg`` makes the head its pooling prefix plus one linear layer
    on the embeddings (a course head ``flatten -> fc1 -> relu -> fc`` becomes ``flatten -> fc``), the
    shape a logistic regression fills. Calling it again (e.g. when rebuilding a model from a run
    folder) gives the same structure, so the saved state dict loads.

    Args:
        model: A cnnlab model (``reset_classifier`` of the model contract).
        kind: ``linear``, ``mlp`` or ``logreg``.
        num_classes: Outputs of the new classifier.
        hidden: Width of the ``mlp`` hidden layer.
        dropout: Dropout probability of the ``mlp`` head.

    Raises:
        ArgumentError: An unknown ``kind``.
        ModelError: ``logreg`` on a head that cannot be reduced to one linear layer.
    """
    from torch import nn

    from .blocks import MLPHead

    try:
        kind = HeadKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in HeadKind)
        raise ArgumentError(f"{kind!r}: unknown head; choose one of {choices}", param="head") from None
    head = get_head(model)
    mlp = next((m for m in head.modules() if isinstance(m, MLPHead)), None)
    if mlp is not None:  # undo an earlier mlp head first
        replace_module(model, mlp, nn.Linear(mlp.in_features, num_classes))
    cast(Any, model).reset_classifier(num_classes)
    if kind is HeadKind.LOGREG:
        _single_linear_head(model, num_classes)
    if kind is HeadKind.MLP:
        old = classifier_layer(model)
        replace_module(model, old, MLPHead(old.in_features, num_classes, hidden=hidden, dropout=dropout))


def _single_linear_head(model: nn.Module, num_classes: int) -> None:
    from collections import OrderedDict

    from torch import nn

    prefix, rest = split_head(model)
    linears = [m for m in rest.modules() if isinstance(m, nn.Linear)]
    if len(linears) == 1:
        return
    head = get_head(model)
    if not isinstance(head, nn.Sequential) or not linears:
        raise ModelError(
            f"logreg head: cannot reduce the head of {type(model).__name__} to one linear layer; use a "
            "linear or mlp head",
            param="head",
        )
    keep = list(head.named_children())[: len(cast(nn.Sequential, prefix))]
    cast(Any, model).head = nn.Sequential(
        OrderedDict([*keep, ("fc", nn.Linear(linears[0].in_features, num_classes))])
    )


# ------------------------------------------------------------------------------------ features/head split


def _cacheable(m: nn.Module) -> bool:
    """No parameters, no buffers, no dropout: the same output in train and eval mode, nothing to learn."""
    from torch import nn

    if any(True for _ in m.parameters()) or any(True for _ in m.buffers()):
        return False
    return not any(isinstance(sub, nn.modules.dropout._DropoutNd) for sub in m.modules())


def split_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Split the head into ``(prefix, rest)`` with ``model.forward_head(f) == rest(prefix(f))``.

    ``prefix`` is the longest run of leading modules of an ``nn.Sequential`` head that hold no
    parameters, no buffers and no dropout (global pooling, flatten: they act the same in train and
    eval mode, so their output can be cached); ``rest`` holds every parameter of the head (trained).
    A model whose ``forward_head`` is not plain ``head(f)`` keeps its head whole: ``prefix`` is the
    identity.
    """
    from torch import nn

    from .blocks import ForwardHead

    head = get_head(model)
    own_forward_head = not getattr(model, "plain_forward_head", False)
    if own_forward_head or not isinstance(head, nn.Sequential):
        return nn.Identity(), (ForwardHead(model) if own_forward_head else head)
    n = 0
    for m in head:
        if not _cacheable(m):
            break
        n += 1
    return nn.Sequential(*head[:n]), nn.Sequential(*head[n:])


def gap_linear_head(
    model: nn.Module, activations: torch.Tensor, logits: torch.Tensor, *, layer: str
) -> nn.Linear:
    """The linear layer of a global-average-pool + linear head right after ``layer`` (checked numerically).

    ``linear(mean over space of activations)`` must reproduce ``logits``: CAM's weights are then the
    classifier's own.

    Args:
        model: The model.
        activations: ``[N, K, h, w]`` output of ``layer``.
        logits: ``[N, classes]`` output of the model for the same input.
        layer: The layer's dotted name (for the message).

    Raises:
        ModelError: The head there is not GAP + linear.
    """
    import torch.nn.functional as F
    from torch import nn

    try:
        fc: nn.Linear | None = classifier_layer(model)
    except ModelError:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        fc = linears[-1] if linears else None
    ok = False
    if fc is not None and fc.in_features == activations.shape[1]:
        predicted = F.linear(activations.mean((2, 3)), fc.weight, fc.bias)
        scale = logits.abs().max().clamp(min=1.0)
        ok = predicted.shape == logits.shape and bool(((predicted - logits).abs() <= 1e-3 * scale).all())
    if fc is None or not ok:
        raise ModelError(
            f"cam needs a global-average-pool + linear head right after layer {layer!r}, and "
            f"{type(model).__name__} has another head there; use `method` gradcam (identical on GAP + "
            "linear heads, works for any head)",
            param="method",
        )
    return fc


# ----------------------------------------------------------------------------------------------- stems


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """``(dotted name, layer)`` of the first ``nn.Conv2d`` in registration order (the stem), or None."""
    from torch import nn

    return next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def adapt_in_chans(model: nn.Module, in_chans: int) -> str | None:
    """Give the first convolution ``in_chans`` input channels, adapting its kernels (in place).

    We adapt the stem rather than repeating the grey channel in the data pipeline: one channel in
    memory instead of three, and the model, its summary and its CAMs all see the real input. The
    weights are converted by timm's ``adapt_input_conv`` (grey: sum over RGB, so a grey image gives the
    response an RGB image of equal channels would; more channels: repeated and rescaled). The layer
    keeps its class and ``requires_grad``. Normalise with ``PretrainedCfg.mean_std(in_chans)``.

    Args:
        model: The model (modified in place).
        in_chans: Channels of the data.

    Returns:
        A one-line notice for the user, or ``None`` when nothing had to change.
    """
    found = first_conv(model)
    if found is None or found[1].in_channels == in_chans:
        return None
    import torch
    from timm.models import adapt_input_conv
    from torch import nn

    name, conv = found
    old = conv.in_channels
    with torch.no_grad():
        weight = adapt_input_conv(in_chans, conv.weight.detach(), base_chans=old)
    conv.weight = nn.Parameter(weight.contiguous(), requires_grad=conv.weight.requires_grad)
    conv.in_channels = in_chans
    return (
        f"input has {in_chans} channel(s), the weights expect {old}: adapted the first convolution "
        f"({name}) with timm's adapt_input_conv"
    )


def adapt_model(model: nn.Module, *, num_classes: int, in_chans: int) -> str | None:
    """Resize the classifier (a fresh layer) and the stem (adapted kernels) where they differ.

    A convolutional base without a classifier (``mnist_cnn_base``) has no classifier to resize.

    Returns:
        The notice of :func:`adapt_in_chans`, or None.
    """
    try:
        out = classifier_layer(model).out_features
    except ModelError:
        out = num_classes
    if out != num_classes:
        cast(Any, model).reset_classifier(num_classes)
    return adapt_in_chans(model, in_chans)
