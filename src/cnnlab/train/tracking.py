"""Where a run's numbers go besides ``metrics.csv``: the TensorBoard logger of ``--logger tensorboard``.

``metrics.csv`` is always written (:class:`~cnnlab.train.callbacks.MetricsHistory`) and holds, per epoch,
every parameter group's learning rate (``lr_head``, ``lr_backbone``). With ``logger=tensorboard`` the run
also writes TensorBoard event files to ``<out>/tensorboard/``:

* scalars per epoch (``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, logged by the module) and
  per step (``train_loss_step``);
* one learning-rate series per parameter group, per step (Lightning's ``LearningRateMonitor``:
  ``lr-Adam/head``, ``lr-Adam/backbone``);
* the hyper-parameters (the run's :class:`~cnnlab.train.config.TrainConfig`);
* per epoch, the learning curves and a Grad-CAM grid of fixed validation images as images.

Read them with ``tensorboard --logdir <out>/tensorboard`` or tensorboard's ``EventAccumulator``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L

from ..errors import ModelError
from .config import Logger, TrainConfig

if TYPE_CHECKING:
    import torch

    from .callbacks import MetricsHistory

__all__ = ["CAM_IMAGES", "TensorBoardFigures", "log_every", "make_logger", "tracking_callbacks"]

#: Fixed validation images in the per-epoch Grad-CAM grid.
CAM_IMAGES = 6
#: Folder of the event files inside the run folder.
TENSORBOARD_DIR = "tensorboard"


def make_logger(cfg: TrainConfig, run_dir: Path, *, resumed_at: int | None = None) -> Any:
    """The Lightning logger of ``cfg.logger``: False for ``csv``, a ``TensorBoardLogger`` otherwise.

    Args:
        cfg: The run's options.
        run_dir: The run folder (the event files go to ``<run_dir>/tensorboard``).
        resumed_at: The global step of the checkpoint a resumed run continues from: the points a killed
            run logged after it are purged (the resumed run logs those steps again).

    Returns:
        What ``Trainer(logger=...)`` takes.
    """
    if cfg.logger is Logger.CSV:
        return False
    from lightning.pytorch.loggers import TensorBoardLogger

    # version "" keeps one folder per run, so a resumed run appends to the same event files' folder.
    purge: dict[str, Any] = {} if resumed_at is None else {"purge_step": resumed_at + 1}  # T itself is kept
    return TensorBoardLogger(save_dir=str(run_dir), name=TENSORBOARD_DIR, version="", default_hp_metric=False,
                             **purge)


def log_every(train_images: int, batch_size: int, *, at_most: int = 50) -> int:
    """Steps between two logged points: Lightning's 50, or fewer so that every epoch logs at least once."""
    steps = max(1, math.ceil(train_images / max(batch_size, 1)))
    return max(1, min(at_most, steps))


class TensorBoardFigures(L.Callback):
    """Hyper-parameters at the start, the step loss, and per epoch the curves and a Grad-CAM grid.

    Runs after :class:`~cnnlab.train.callbacks.MetricsHistory` (it draws that callback's rows).

    Args:
        cfg: The run's options (logged as hyper-parameters).
        history: The run's metrics history.
        images: uint8 ``[N, C, H, W]`` fixed validation images for the Grad-CAM grid, or None for none
            (a head trained on cached embeddings sees no image).
        mean: Normalisation mean of the run.
        std: Normalisation std.
        classes: Class names for the figure titles.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        history: MetricsHistory,
        *,
        images: torch.Tensor | None,
        mean: Any,
        std: Any,
        classes: list[str],
    ) -> None:
        super().__init__()
        self.cfg, self.history, self.images, self.classes = cfg, history, images, classes
        self.mean, self.std = tuple(mean), tuple(std)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.logger is not None:
            trainer.logger.log_hyperparams(self.cfg.to_dict())

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        # Only on the steps Lightning logs: reading the loss is a host synchronisation on accelerators.
        every = int(getattr(trainer, "log_every_n_steps", 50)) or 1  # set by Lightning's logger connector
        if trainer.logger is None or loss is None or trainer.global_step % every:
            return
        trainer.logger.log_metrics({"train_loss_step": float(loss.detach())}, step=trainer.global_step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows = self.history.rows
        if trainer.sanity_checking or trainer.state.fn != "fit" or not trainer.is_global_zero or not rows:
            return
        writer = getattr(trainer.logger, "experiment", None)
        if writer is None:
            return
        from ..report.plots import curves_figure

        epoch = int(rows[-1]["epoch"])
        writer.add_figure("curves", curves_figure(rows, num_classes=self.history.num_classes), epoch)
        if self.images is not None:
            writer.add_figure("gradcam", self._cam_figure(pl_module, epoch), epoch)
        writer.flush()

    def _cam_figure(self, pl_module: L.LightningModule, epoch: int) -> Any:
        from ..data.transforms import Preprocess
        from ..interpret.cam import explain
        from ..report.interpret_plots import cam_overlay_figure

        assert self.images is not None
        model = getattr(pl_module, "model", pl_module)
        preprocess = Preprocess(tuple(self.images.shape[1:]), self.mean, self.std)  # type: ignore[arg-type]
        result = explain(model, preprocess.normalize(self.images.to(pl_module.device)), method="gradcam")
        result.maps, result.targets = result.maps.cpu(), result.targets.cpu()
        fig = cam_overlay_figure(self.images.cpu(), result, class_names=self.classes)
        fig.suptitle(f"epoch {epoch}: gradcam on {result.layer}", fontsize=9)
        return fig


def tracking_callbacks(
    cfg: TrainConfig, history: MetricsHistory, *, model: Any, val: Any, info: dict[str, Any],
    classes: list[str], on_images: bool, notices: list[str],
) -> list[L.Callback]:
    """The callbacks ``cfg.logger`` needs (none for ``csv``).

    Args:
        cfg: The run's options.
        history: The run's metrics history (the curves figure draws its rows).
        model: The network (its default CAM layer is checked here, once).
        val: The validation split (its first :data:`CAM_IMAGES` images are the Grad-CAM grid's).
        info: The run's set-up (``mean``/``std``).
        classes: Class names.
        on_images: False when the head trains on cached embeddings (no image to explain).
        notices: Where to say that no Grad-CAM grid will be drawn, and why.

    Returns:
        Callbacks to pass to the Trainer.
    """
    if cfg.logger is Logger.CSV:
        return []
    from lightning.pytorch.callbacks import LearningRateMonitor

    from ..interpret.hooks import resolve_layer

    images = None
    if on_images:
        try:
            resolve_layer(model, "auto")
            import torch

            n = min(CAM_IMAGES, len(val))
            images = val.get_batch(torch.arange(n))[0] if n else None
        except ModelError as exc:
            notices.append(f"TensorBoard gets no Grad-CAM grid: {exc}")
    else:
        notices.append("TensorBoard gets no Grad-CAM grid: the head trains on cached embeddings, not images")
    figures = TensorBoardFigures(cfg, history, images=images, mean=info["mean"], std=info["std"],
                                 classes=classes)
    return [LearningRateMonitor(logging_interval="step"), figures]
