"""The LightningModule that trains every cnnlab classifier.

Multi-class models (``num_classes > 1``) use cross-entropy; binary models (one output logit, as the
course's cats network) use ``BCEWithLogitsLoss`` and predict class 1 when ``sigmoid(logit) > 0.5``.
The training step is lean: no host synchronisation per step (metrics accumulate on the device and are
computed once per epoch), so the loop runs at the speed of the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from .config import Optimizer, Schedule, TrainConfig


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 63-bit seed derived from ``(seed, epoch, rank)``: the RNG stream of one epoch on one process.

    Re-seeding at every epoch start makes a resumed run draw the same random numbers (dropout,
    augmentation that uses the global generator) as an uninterrupted one.
    """
    digest = hashlib.sha256(f"cnnlab:{seed}:{epoch}:{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _loss_and_preds(
    logits: torch.Tensor, target: torch.Tensor, binary: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    if binary:
        logit = logits.reshape(-1)
        return F.binary_cross_entropy_with_logits(logit, target.to(logit.dtype)), (logit > 0).long()
    return F.cross_entropy(logits, target), logits.argmax(dim=1)


def _can_fuse(groups: list[dict[str, Any]]) -> bool | None:
    """True when every parameter is a floating tensor on the CPU or CUDA (the fused kernels' domain)."""
    params = [p for g in groups for p in g["params"]]
    ok = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return True if ok else None


class _EpochMetrics(nn.Module):
    """Mean loss over images and accuracy of one stage; synced across processes on compute."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.loss = torchmetrics.MeanMetric(nan_strategy="disable")
        if num_classes == 1:
            self.acc: torchmetrics.Metric = torchmetrics.classification.BinaryAccuracy(validate_args=False)
        else:
            self.acc = torchmetrics.classification.MulticlassAccuracy(
                num_classes, average="micro", validate_args=False
            )

    def update(self, loss: torch.Tensor, preds: torch.Tensor, target: torch.Tensor) -> None:
        # The batch mean once per image: the epoch's loss is the mean over images, as `evaluate` computes it.
        # (MeanMetric's `weight` is dropped when nan_strategy="disable", torchmetrics 1.9: the epoch loss
        # was the mean of the batch means, 0.6923 vs evaluate's 0.6928 on 64 + 56 images.)
        self.loss.update(loss.detach().reshape(1).expand(target.shape[0]))
        self.acc.update(preds, target)

    def compute_and_reset(self) -> tuple[float, float]:
        loss, acc = float(self.loss.compute()), float(self.acc.compute())
        self.loss.reset()
        self.acc.reset()
        return loss, acc


class ClassifierModule(L.LightningModule):
    """Train ``model`` for classification with the optimiser/schedule of a :class:`TrainConfig`.

    Args:
        model: The network the module calls (a cnnlab model, or the head alone when training on
            cached embeddings).
        num_classes: Number of outputs; 1 means a binary model trained with ``BCEWithLogitsLoss``.
        config: Optimiser, learning rate, weight decay, schedule and seed.
        param_groups: Builds the optimizer's parameter groups from ``model`` (transfer learning: head
            and backbone groups with their own learning rates); default one group of all parameters.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        num_classes: int,
        config: TrainConfig,
        param_groups: Callable[[nn.Module], list[dict[str, Any]]] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.num_classes = num_classes
        self.binary = num_classes == 1
        self.config = config
        self._param_groups_fn = param_groups
        self.train_metrics = _EpochMetrics(num_classes)
        self.val_metrics = _EpochMetrics(num_classes)
        #: Metrics of the last finished epoch: train_loss, train_acc, val_loss, val_acc, lr, lr_<group>.
        self.epoch_metrics: dict[str, float] = {}
        #: Convolutions run channels-last (decided in :meth:`setup` from the config and the device).
        self.nhwc = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nhwc and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def setup(self, stage: str) -> None:
        # Before the strategy moves the model and wraps it (DDP builds its gradient buckets from the
        # parameters as they are then), on the device the strategy will train on.
        if self.config.channels_last is None:  # auto: NHWC is the faster layout for oneDNN on the CPU
            device = self._trainer.strategy.root_device if self._trainer is not None else self.device
            self.nhwc = device.type == "cpu"
        else:
            self.nhwc = bool(self.config.channels_last)
        if self.nhwc:  # 4-D weights (convolutions) become NHWC; others are unaffected
            self.model.to(memory_format=torch.channels_last)

    # -- steps ---------------------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss, preds = _loss_and_preds(self(x), y, self.binary)
        self.train_metrics.update(loss, preds, y)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        loss, preds = _loss_and_preds(self(x), y, self.binary)
        self.val_metrics.update(loss, preds, y)

    # -- epoch hooks ---------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        torch.manual_seed(epoch_seed(self.config.seed, self.current_epoch, self.global_rank))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.val_metrics.loss.reset()
            self.val_metrics.acc.reset()
            return
        val_loss, val_acc = self.val_metrics.compute_and_reset()
        metrics = {"val_loss": val_loss, "val_acc": val_acc}
        if self.trainer.state.fn == "fit":
            train_loss, train_acc = self.train_metrics.compute_and_reset()
            groups = self.trainer.optimizers[0].param_groups if self.trainer.optimizers else []
            lr = float(groups[0]["lr"]) if groups else 0.0
            # Every named group's rate (lr_head, lr_backbone): `lr` alone is the first group's.
            named = {f"lr_{g['name']}": float(g["lr"]) for g in groups if "name" in g}
            metrics = {"train_loss": train_loss, "train_acc": train_acc, **metrics, "lr": lr, **named}
        self.epoch_metrics = metrics
        # Already reduced over processes by torchmetrics; logged for the progress bar and ModelCheckpoint.
        # Learning rates stay out of the logger: LearningRateMonitor logs one series per group, per step.
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name in ("train_loss", "val_loss", "val_acc"), sync_dist=False,
                     logger=False if name.startswith("lr") else None)

    # -- optimisation --------------------------------------------------------------------------
    def _param_groups(self) -> list[dict[str, Any]]:
        cfg = self.config
        if self._param_groups_fn is not None:
            return self._param_groups_fn(self.model)
        lr, decay = cfg.learning_rate, cfg.weight_decay
        return [{"params": list(self.model.parameters()), "lr": lr, "weight_decay": decay}]

    def configure_optimizers(self) -> Any:
        cfg = self.config
        groups = self._param_groups()
        # One fused kernel for all parameters instead of a Python loop over them (CPU and CUDA).
        fused = _can_fuse(groups)
        if cfg.optimizer is Optimizer.SGD:
            opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=0.9,
                                                         fused=fused)
        elif cfg.optimizer is Optimizer.ADAMW:
            opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=fused)
        else:
            opt = torch.optim.Adam(groups, lr=cfg.learning_rate, fused=fused)
        if cfg.schedule is Schedule.NONE:
            return opt
        total = int(self.trainer.estimated_stepping_batches)
        if cfg.schedule is Schedule.ONECYCLE:
            sched: Any = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=max(total, 1)
            )
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
