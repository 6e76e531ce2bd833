"""Transfer learning: freeze policies, optimizer parameter groups, the frozen-BN rule, grayscale stems.

Modes (``--transfer``):

* ``scratch``: everything trainable (random init; use ``backbone_lr_mult=1``).
* ``features``: only ``model.head`` trains; the backbone is a fixed feature extractor. With no
  augmentation the embeddings are computed once and cached (:mod:`cnnlab.transfer.embeddings`).
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

Where it is used: :func:`cnnlab.train.recipe.build_model` applies the policy of the run's last epoch
(so ``load_run`` rebuilds the trained ``requires_grad`` map), and ``fit`` passes the policy to the
Trainer as a callback and builds the optimizer from :meth:`FreezePolicy.param_groups`. Heads and
grey stems are model surgery (:mod:`cnnlab.models.surgery`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..errors import TrainingError
from .freezing import ParamCounts, TransferMode, apply_transfer, mode_at, param_groups, set_frozen_bn_eval

__all__ = ["FreezePolicy"]


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
        return mode_at(self.mode, epoch, self.fine_tune_epochs)

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
