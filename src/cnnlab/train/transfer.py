"""Transfer learning: freeze policies, optimizer parameter groups, the frozen-BN rule, grayscale stems.

Modes (``--transfer``):

* ``scratch``: everything trainable (random init; use ``backbone_lr_mult=1``).
* ``features``: only ``model.head`` trains; the backbone is a fixed feature extractor. With no
  augmentation the embeddings are computed once and cached (:mod:`cnnlab.train.embeddings`).
* ``partial``: the head plus the last ``unfreeze`` entries of ``model.blocks`` and every backbone
  parameter registered after them (e.g. EfficientNet's ``conv_head``/``bn2`` after its last stage), or
  exactly the modules named by ``--unfreeze-layers``.
* ``full``: everything trainable; the backbone learns at ``lr * backbone_lr_mult``.

Frozen parts run in inference mode: every maximal sub-module whose parameters are all frozen is put
in ``eval()`` at the start of each training epoch, so batch-norm running statistics stay unchanged
and dropout/drop-path inside a frozen backbone is off (a frozen feature extractor is deterministic —
that is what makes the embedding cache exact). ``--train-bn`` (fastai's ``train_bn``) keeps batch-norm
layers trainable everywhere: their affine parameters get gradients and their statistics update.

Fine-tune schedule (``fine_tune_epochs=k``): epochs ``0..k-1`` run as ``features``, then the target
mode (``partial``/``full``). The optimizer always holds the backbone group (frozen parameters have no
gradient, so optimizers skip them), and the mode of an epoch is a pure function of the epoch number:
``--resume`` mid-schedule restores exactly the right ``requires_grad`` map and optimizer state.

Where it is used: :func:`cnnlab.train.build.build_model` applies the policy of the run's last epoch
(so ``load_run`` rebuilds the trained ``requires_grad`` map), and ``fit`` passes the policy to the
Trainer as a callback and builds the optimizer from :meth:`FreezePolicy.param_groups`. Heads and
grey stems are model surgery (:mod:`cnnlab.models.surgery`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from ..errors import ModelArgumentError, ModelError, TrainingError
from ..models.surgery import get_head
from .config import Transfer as TransferMode

__all__ = [
    "FreezePolicy",
    "ParamCounts",
    "TransferMode",
    "apply_transfer",
    "count_params",
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


def _find_model(pl_module: nn.Module) -> nn.Module:
    for candidate in (pl_module, getattr(pl_module, "model", None), getattr(pl_module, "net", None)):
        if isinstance(candidate, nn.Module) and isinstance(getattr(candidate, "head", None), nn.Module):
            return candidate
    raise TrainingError(f"{type(pl_module).__name__}: no cnnlab model found (expected a .model with a .head)")


def _callback_base() -> type:
    import lightning as L

    return L.Callback


class FreezePolicy(_callback_base()):  # type: ignore[misc]
    """Lightning callback: the transfer mode of each epoch, re-applied on (re)start, and the BN rule.

    The mode of epoch ``e`` is ``features`` while ``e < fine_tune_epochs`` and ``mode`` afterwards, a
    pure function of the epoch: after ``--resume`` the same ``requires_grad`` map comes back.

    Args:
        mode: Target transfer mode.
        unfreeze: ``partial``: number of last blocks to train.
        unfreeze_layers: ``partial``: module names to train instead.
        train_bn: Batch-norm layers train even where frozen.
        fine_tune_epochs: Epochs to train the head alone before switching to ``mode``.
        backbone_lr_mult: Backbone learning-rate multiplier (``scratch`` always uses 1.0).
    """

    def __init__(
        self,
        *,
        mode: TransferMode | str = TransferMode.SCRATCH,
        unfreeze: int = 1,
        unfreeze_layers: Sequence[str] = (),
        train_bn: bool = False,
        fine_tune_epochs: int = 0,
        backbone_lr_mult: float = 0.1,
    ) -> None:
        super().__init__()
        self.mode = TransferMode(mode)
        self.unfreeze = unfreeze
        self.unfreeze_layers = tuple(unfreeze_layers)
        self.train_bn = train_bn
        self.fine_tune_epochs = fine_tune_epochs
        self.backbone_lr_mult = 1.0 if self.mode is TransferMode.SCRATCH else backbone_lr_mult
        if fine_tune_epochs and self.mode not in (TransferMode.PARTIAL, TransferMode.FULL):
            raise TrainingError(
                f"{fine_tune_epochs}: needs `transfer` partial or full (got {self.mode})",
                param="fine_tune_epochs",
            )
        self.counts: ParamCounts | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> FreezePolicy:
        """Build from a :class:`cnnlab.train.config.TrainConfig`."""
        return cls(
            mode=cfg.transfer,
            unfreeze=cfg.unfreeze,
            unfreeze_layers=cfg.unfreeze_layers,
            train_bn=cfg.train_bn,
            fine_tune_epochs=cfg.fine_tune_epochs,
            backbone_lr_mult=cfg.backbone_lr_mult,
        )

    def mode_at(self, epoch: int) -> TransferMode:
        """The transfer mode in force during ``epoch`` (0-based)."""
        return TransferMode.FEATURES if epoch < self.fine_tune_epochs else self.mode

    def apply(self, model: nn.Module, epoch: int = 0) -> ParamCounts:
        """Set ``requires_grad`` for ``epoch``'s mode; returns (and remembers) the counts."""
        self.counts = apply_transfer(
            model,
            mode=self.mode_at(epoch),
            unfreeze=self.unfreeze,
            unfreeze_layers=self.unfreeze_layers,
            train_bn=self.train_bn,
        )
        return self.counts

    def param_groups(self, model: nn.Module, *, lr: float, weight_decay: float = 0.0) -> list[dict[str, Any]]:
        """Optimizer groups for this policy (frozen-now parameters included when a schedule unfreezes them).

        With a schedule, the backbone group holds the parameters the target mode trains; they are
        frozen (no gradient) until ``fine_tune_epochs`` and the optimizer skips them until then.
        """
        if not self.fine_tune_epochs:
            return param_groups(
                model, lr=lr, backbone_lr_mult=self.backbone_lr_mult, weight_decay=weight_decay
            )
        saved = {p: p.requires_grad for p in model.parameters()}
        try:
            apply_transfer(
                model,
                mode=self.mode,
                unfreeze=self.unfreeze,
                unfreeze_layers=self.unfreeze_layers,
                train_bn=self.train_bn,
            )
            return param_groups(
                model, lr=lr, backbone_lr_mult=self.backbone_lr_mult, weight_decay=weight_decay
            )
        finally:
            for p, flag in saved.items():
                p.requires_grad_(flag)

    # -- Lightning hooks -------------------------------------------------------------------------
    def _sync(self, trainer: Any, pl_module: nn.Module, *, modes: bool = True) -> None:
        model = _find_model(pl_module)
        self.apply(model, trainer.current_epoch)
        if modes and pl_module.training:
            model.train()  # parts unfrozen by the schedule leave the eval mode of their frozen epochs
            set_frozen_bn_eval(model, self.train_bn)

    def on_fit_start(self, trainer: Any, pl_module: nn.Module) -> None:
        # The requires_grad map before anything runs; on_train_start corrects it once Lightning has
        # restored the loop state of a resumed run, and sets the eval modes (setting them here would
        # trigger Lightning's "modules in eval mode at the start of training" warning).
        self._sync(trainer, pl_module, modes=False)

    def on_train_start(self, trainer: Any, pl_module: nn.Module) -> None:
        self._sync(trainer, pl_module)

    def on_train_epoch_start(self, trainer: Any, pl_module: nn.Module) -> None:
        self._sync(trainer, pl_module)
