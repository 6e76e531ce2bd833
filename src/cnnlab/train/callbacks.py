"""Lightning callbacks and plugins of a cnnlab run.

* :class:`MetricsHistory`: one row per epoch in ``metrics.csv`` and ``curves.png`` (rank 0, atomic);
  wall times go to ``timing.csv`` so that ``metrics.csv`` is identical for identical seeds.
* :class:`NonFiniteGuard`: stops the run with a :class:`TrainingError` when the loss is NaN/inf, before
  a checkpoint with broken weights can be written.
* :class:`AtomicCheckpointIO`: checkpoints are written to a temporary file and renamed (Lightning's own
  writer truncates the destination in place).
* :class:`ThroughputBar`: rich progress bar on stderr that shows training images per second.
* :class:`EpochLines`: without the bar (``--no-progress``), one line per epoch on stderr.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .._io import save_figure, save_torch, write_text
from ..errors import CnnlabError, TrainingError

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")
TIMING_COLUMNS = ("epoch", "seconds", "train_images_per_s")


def _csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def metric_columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """:data:`METRIC_COLUMNS`, then each parameter group's learning rate (``lr_head``, ``lr_backbone``)."""
    groups = dict.fromkeys(k for row in rows for k in row if k.startswith("lr_"))
    return (*METRIC_COLUMNS, *groups)


def read_metrics(path: str | Path, columns: Sequence[str] = METRIC_COLUMNS) -> list[dict[str, float]]:
    """Read a ``metrics.csv`` (or, with ``columns=TIMING_COLUMNS``, a ``timing.csv``) written by
    :class:`MetricsHistory`: ``epoch`` as int, the rest floats.

    Raises:
        CnnlabError: A missing file, a missing column, or a value that is not a number (naming the file,
            the line and the column).
    """
    path = Path(path)
    fix = "train the run again or restore the file"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise CnnlabError(f"{path}: column {missing[0]!r} is missing; {fix}")
            rows = []
            for line, row in enumerate(reader, start=2):
                values: dict[str, float] = {}
                for k in columns:
                    try:
                        values[k] = int(row[k]) if k == "epoch" else float(row[k])
                    except (TypeError, ValueError):
                        raise CnnlabError(f"{path}: line {line}, column {k!r} is {row[k]!r}, not a number; "
                                          f"{fix}") from None
                rows.append(values)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CnnlabError(f"{path}: cannot be read ({exc}); {fix}") from None
    return rows


class MetricsHistory(L.Callback):
    """Collect the epoch metrics of :class:`~cnnlab.train.module.ClassifierModule` and write the files.

    Runs at ``on_validation_end``, before ``ModelCheckpoint`` (Lightning orders checkpoint callbacks
    last), so each checkpoint carries the history up to and including its epoch and a resumed run
    continues the same ``metrics.csv``. Non-finite epoch losses raise :class:`TrainingError` there,
    so no checkpoint of broken weights is saved.

    Args:
        run_dir: The run folder (``metrics.csv``, ``timing.csv``, ``curves.png`` go there).
        title: Title of ``curves.png``.
        plot: Redraw ``curves.png`` every epoch.
    """

    def __init__(self, run_dir: str | Path, *, title: str = "", plot: bool = True) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.title = title
        self.plot = plot
        self.num_classes: int | None = None  # the curves' chance level, read from the module
        self.rows: list[dict[str, Any]] = []
        self.timing: list[dict[str, Any]] = []
        self._t0 = self._t_train = 0.0
        self._images = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = self._t_train = time.perf_counter()
        self._images = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._images += int(batch[1].shape[0])
        self._t_train = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = dict(getattr(pl_module, "epoch_metrics", {}))
        self.num_classes = getattr(pl_module, "num_classes", None)
        epoch = trainer.current_epoch + 1
        bad = [k for k in ("train_loss", "val_loss") if k in metrics and not math.isfinite(metrics[k])]
        if bad:
            raise TrainingError(_nonfinite_message(trainer, f"{bad[0]} = {metrics[bad[0]]}", epoch))
        seconds = time.perf_counter() - self._t0
        groups = {k: v for k, v in metrics.items() if k.startswith("lr_")}
        self.rows.append({"epoch": epoch, **{k: metrics.get(k, float("nan")) for k in METRIC_COLUMNS[1:]},
                          **groups})
        train_seconds = max(self._t_train - self._t0, 1e-9)
        rate = self._images * trainer.world_size / train_seconds
        self.timing.append(
            {"epoch": epoch, "seconds": round(seconds, 3), "train_images_per_s": round(rate, 1)}
        )
        if trainer.is_global_zero:
            self.write()

    def write(self) -> None:
        """Write ``metrics.csv``, ``timing.csv`` and ``curves.png`` (atomically)."""
        write_text(self.run_dir / "metrics.csv", _csv_text(self.rows, metric_columns(self.rows)))
        write_text(self.run_dir / "timing.csv", _csv_text(self.timing, TIMING_COLUMNS))
        if self.plot and self.rows:
            from ..report.plots import curves_figure

            save_figure(self.run_dir / "curves.png", curves_figure(self.rows, title=self.title,
                                                                    num_classes=self.num_classes))

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows], "timing": [dict(r) for r in self.timing]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state_dict.get("rows", [])]
        self.timing = [dict(r) for r in state_dict.get("timing", [])]


def _nonfinite_message(trainer: L.Trainer, what: str, epoch: int) -> str:
    lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
    last = None
    for cb in trainer.checkpoint_callbacks:
        path = Path(getattr(cb, "dirpath", "") or "") / "last.ckpt"
        if path.is_file():
            last = path
    kept = f"the last good checkpoint is kept at {last}" if last else "no checkpoint had been written yet"
    return (
        f"training stopped: {what} in epoch {epoch} (diverged); {kept}; "
        f"lower `lr` (now {lr:g}) or use `schedule` onecycle"
    )


class NonFiniteGuard(L.Callback):
    """Stop training at the first NaN/inf loss.

    On CPU the check costs nothing (the loss is already in host memory) and runs every step; on an
    accelerator it runs every ``every`` steps to avoid a device synchronisation per step (the epoch
    check in :class:`MetricsHistory` still catches anything before a checkpoint is written).
    """

    def __init__(self, every: int = 50) -> None:
        super().__init__()
        self.every = every

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.world_size > 1:
            # A rank stopping alone would leave the others waiting in an all-reduce; with several
            # processes the epoch check of MetricsHistory (on losses synced over ranks) stops all at once.
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        if loss.device.type != "cpu" and batch_idx % self.every:
            return
        if not bool(torch.isfinite(loss.detach()).all()):
            what = f"loss = {float(loss.detach().float().mean())} at step {batch_idx + 1}"
            raise TrainingError(_nonfinite_message(trainer, what, trainer.current_epoch + 1))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoint writer that never leaves a half-written ``.ckpt`` (temporary file + rename)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        save_torch(path, checkpoint)


class ThroughputBar(RichProgressBar):
    """Rich progress bar (stderr) whose metrics include training images per second; epochs count from 1."""

    def __init__(self, refresh_rate: int = 5) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=True, console_kwargs={"stderr": True})
        self._t0 = 0.0
        self._images = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._t0 = time.perf_counter()
        self._images = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._images += int(batch[1].shape[0])
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _get_train_description(self, current_epoch: int) -> str:
        # Lightning counts from 0 ("Epoch 0/2"); metrics.csv and the run summary count from 1.
        total = f"/{self.trainer.max_epochs}" if self.trainer.max_epochs else ""
        return f"{f'Epoch {current_epoch + 1}{total}':{len(self.validation_description)}}"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        elapsed = time.perf_counter() - self._t0
        if self._images and elapsed > 0:
            items["img/s"] = f"{self._images * trainer.world_size / elapsed:,.0f}"
        return items


class EpochLines(L.Callback):
    """One line per epoch on stderr (``--no-progress``): losses, accuracies, seconds and images/s.

    Reads the row :class:`MetricsHistory` has just recorded, so the numbers are those of ``metrics.csv``.
    """

    def __init__(self, history: MetricsHistory) -> None:
        super().__init__()
        self.history = history

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows = self.history.rows
        if not trainer.is_global_zero or not rows or rows[-1]["epoch"] != trainer.current_epoch + 1:
            return  # no row recorded for this epoch (sanity check, not fitting)
        import sys

        row, timing = self.history.rows[-1], (self.history.timing or [{}])[-1]
        rate = timing.get("train_images_per_s")
        speed = f", {timing['seconds']:.1f} s ({rate:,.0f} img/s)" if "seconds" in timing and rate else ""
        print(
            f"epoch {row['epoch']}/{trainer.max_epochs}: train loss {row['train_loss']:.4f} acc "
            f"{row['train_acc']:.4f}, val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}{speed}",
            file=sys.stderr,
            flush=True,
        )
