"""Freezing without Lightning: which parameters train in each transfer mode, and the optimizer groups.

Pure functions on a model (``requires_grad``, batch-norm modes, parameter counts and groups), used by the
:class:`~cnnlab.transfer.policy.FreezePolicy` callback during training and by
:func:`~cnnlab.train.recipe.build_model` when a run is rebuilt (``load_run`` must not need Lightning).
The modes are described in :mod:`cnnlab.transfer.policy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from ..errors import ModelArgumentError, ModelError
from ..models.surgery import get_head
from ..train.config import Transfer as TransferMode

__all__ = [
    "ParamCounts",
    "TransferMode",
    "apply_transfer",
    "count_params",
    "mode_at",
    "param_groups",
    "requires_grad_map",
    "set_frozen_bn_eval",
]

_BN = nn.modules.batchnorm._BatchNorm


@dataclass(frozen=True)
class ParamCounts:
    """Trainable and frozen parameter counts (elements, shared parameters counted once)."""

    trainable: int
    frozen: int

    @property
    def total(self) -> int:
        return self.trainable + self.frozen

    def as_dict(self) -> dict[str, int]:
        """``{"trainable", "frozen", "total"}`` (what the run folder stores)."""
        return {**asdict(self), "total": self.total}


def count_params(model: nn.Module) -> ParamCounts:
    """Count trainable/frozen parameter elements of ``model``."""
    trainable = frozen = 0
    for p in model.parameters():
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return ParamCounts(trainable, frozen)


def requires_grad_map(model: nn.Module) -> dict[str, bool]:
    """``{parameter name: requires_grad}`` — compare two of these to check a freezing state."""
    return {name: p.requires_grad for name, p in model.named_parameters()}


def _valid_layer_names(model: nn.Module) -> list[str]:
    names = list(getattr(model, "blocks", []) or [])
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module):
        names += [f"features.{n}" for n, _ in features.named_children() if f"features.{n}" not in names]
    return names


def _resolve_layers(model: nn.Module, names: Iterable[str]) -> list[nn.Module]:
    modules = []
    for name in names:
        try:
            modules.append(model.get_submodule(name))
        except AttributeError:
            valid = ", ".join(_valid_layer_names(model)) or "(none known)"
            raise ModelArgumentError(
                f"{name!r}: no such layer in {type(model).__name__}; valid names include {valid}",
                param="unfreeze_layers",
            ) from None
    return modules


def _bn_params(model: nn.Module) -> Iterator[nn.Parameter]:
    for m in model.modules():
        if isinstance(m, _BN):
            yield from m.parameters(recurse=False)


def apply_transfer(
    model: nn.Module,
    *,
    mode: TransferMode | str,
    unfreeze: int = 1,
    unfreeze_layers: Sequence[str] = (),
    train_bn: bool = False,
) -> ParamCounts:
    """Set ``requires_grad`` on every parameter of ``model`` for a transfer mode.

    Args:
        model: A cnnlab model (has ``.head`` and, for ``partial``, ``.blocks``).
        mode: ``scratch``, ``features``, ``partial`` or ``full``.
        unfreeze: ``partial``: how many of the last ``model.blocks`` to train (with everything after).
        unfreeze_layers: ``partial``: dotted module names to train instead (``model.get_submodule``).
        train_bn: Keep batch-norm affine parameters trainable in frozen parts too.

    Returns:
        The trainable/frozen parameter counts after the change.

    Raises:
        ModelError: Unknown blocks or layer names (the message names ``--unfreeze-layers``).
    """
    mode = TransferMode(mode)
    head = get_head(model)
    if mode in (TransferMode.SCRATCH, TransferMode.FULL):
        model.requires_grad_(True)
        _keep_fixed_layers_frozen(model)
        return count_params(model)
    model.requires_grad_(False)
    if mode is TransferMode.PARTIAL:
        if unfreeze_layers:
            trainable = _resolve_layers(model, unfreeze_layers)
        else:
            blocks = list(getattr(model, "blocks", []) or [])
            if not blocks:
                valid = ", ".join(_valid_layer_names(model)) or "see `cnnlab summary`"
                raise ModelError(
                    f"partial: the blocks of {type(model).__name__} are unknown; name the layers "
                    f"to train with `unfreeze_layers` NAME... (e.g. {valid})",
                    param="transfer",
                )
            if not 1 <= unfreeze <= len(blocks):
                raise ModelArgumentError(
                    f"{unfreeze}: {type(model).__name__} has {len(blocks)} blocks "
                    f"({', '.join(blocks)}); give 1..{len(blocks)} or name them with `unfreeze_layers`",
                    param="unfreeze",
                )
            # The block and everything after it (modules are registered in forward order).
            first = next(_resolve_layers(model, blocks[-unfreeze:])[0].parameters(), None)
            after = False
            for p in model.parameters():
                after = after or p is first
                p.requires_grad_(after)
            trainable = []
        for m in trainable:
            m.requires_grad_(True)
    head.requires_grad_(True)
    if train_bn:
        for p in _bn_params(model):
            p.requires_grad_(True)
    _keep_fixed_layers_frozen(model)
    return count_params(model)


def _keep_fixed_layers_frozen(model: nn.Module) -> None:
    """Layers built frozen on purpose (``trainable is False``, e.g. FixedFilterConv2d) stay frozen."""
    for m in model.modules():
        if getattr(m, "trainable", None) is False:
            m.requires_grad_(False)


def set_frozen_bn_eval(model: nn.Module, train_bn: bool = False) -> list[str]:
    """Put every maximal fully-frozen sub-module in ``eval()`` (call at the start of each train epoch).

    A sub-module all of whose parameters have ``requires_grad=False`` is frozen: it runs in inference
    mode, so its batch-norm running statistics do not change and its dropout is off. Parameter-free
    modules (ReLU, pooling, dropout) directly under a partly trainable parent keep the parent's mode.

    Args:
        model: The model, already switched to ``train()`` by the trainer.
        train_bn: Leave batch-norm layers in training mode even inside frozen parts.

    Returns:
        Dotted names of the modules put in eval mode.
    """
    frozen: list[str] = []

    def visit(prefix: str, module: nn.Module) -> None:
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
            frozen.append(prefix)
            if train_bn:
                for m in module.modules():
                    if isinstance(m, _BN):
                        m.train()
            return
        for name, child in module.named_children():
            visit(f"{prefix}.{name}" if prefix else name, child)

    visit("", model)
    return frozen


def param_groups(
    model: nn.Module,
    *,
    lr: float,
    backbone_lr_mult: float = 0.1,
    weight_decay: float = 0.0,
    include_frozen: bool = False,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: ``head`` at ``lr``, ``backbone`` at ``lr * backbone_lr_mult``.

    Args:
        model: A cnnlab model; parameters of ``model.head`` form the head group, all others the backbone.
        lr: Head learning rate.
        backbone_lr_mult: Backbone learning rate multiplier (use 1.0 when training from scratch).
        weight_decay: Weight decay of both groups.
        include_frozen: Also put frozen parameters in their group (for a fine-tune schedule that
            unfreezes later: optimizers skip parameters without gradients).

    Returns:
        A list of ``{"name", "params", "lr", "weight_decay"}`` dicts; empty groups are left out.
    """
    head_ids = {id(p) for p in get_head(model).parameters()}
    head: list[nn.Parameter] = []
    backbone: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad or include_frozen:
            (head if id(p) in head_ids else backbone).append(p)
    groups = [
        {"name": "head", "params": head, "lr": lr, "weight_decay": weight_decay},
        {"name": "backbone", "params": backbone, "lr": lr * backbone_lr_mult, "weight_decay": weight_decay},
    ]
    return [g for g in groups if g["params"]]


def mode_at(mode: TransferMode | str, epoch: int, fine_tune_epochs: int = 0) -> TransferMode:
    """The transfer mode in force during ``epoch`` (0-based): ``features`` until the schedule unfreezes."""
    return TransferMode.FEATURES if epoch < fine_tune_epochs else TransferMode(mode)
