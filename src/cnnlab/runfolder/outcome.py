"""How a run ends: :class:`RunResult`, the result of a finished run, and the best epoch kept after a stop.

* :class:`RunResult`: what :func:`~cnnlab.train.run.fit` returns (and the paragraph the CLI prints).
* :func:`nothing_to_do`: ``resume`` on a run that is already finished returns what it holds, trains
  nothing and writes nothing.
* :func:`keep_best`: a run stopped by a NaN loss or a full disk still exports its best checkpoint to
  ``model.safetensors``; the error then says where the weights are, or how to export them once there
  is room.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import write_json
from ..errors import CnnlabError, DiskFullError
from ..train.config import TrainConfig
from .folder import export_best
from .schema import RunFileError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["RunResult", "extend_error", "keep_best", "nothing_to_do"]


@dataclass
class RunResult:
    """What :func:`fit` produced.

    Attributes:
        run_dir: The run folder.
        best_val_loss: Lowest validation loss over the epochs.
        best_epoch: 1-based epoch of ``best_val_loss``.
        metrics: One dict per epoch (the rows of ``metrics.csv``).
        params: Trainable/frozen/total parameter counts.
        num_classes: Model outputs (1 for a binary model).
        notices: One-line notices raised while setting up (e.g. an adapted input layer).
        global_rank: The process's rank (only rank 0 wrote the folder).
        already_done: ``resume`` found the run finished: nothing was trained or written.
        epochs: The epochs the run was asked for.
    """

    run_dir: Path
    best_val_loss: float
    metrics: list[dict[str, Any]]
    best_epoch: int = 0
    params: dict[str, int] = field(default_factory=dict)
    num_classes: int = 0
    notices: list[str] = field(default_factory=list)
    global_rank: int = 0
    already_done: bool = False
    epochs: int = 0

    def summary(self) -> str:
        """One paragraph for the terminal: what was trained, how well, and where everything is."""
        last = self.metrics[-1] if self.metrics else {}
        best = next((m for m in self.metrics if m.get("epoch") == self.best_epoch), last)
        nan = float("nan")
        if self.already_done:
            return (
                f"Nothing to do: {self.run_dir} has already trained {len(self.metrics)} of {self.epochs} "
                f"epoch(s) (best validation loss {self.best_val_loss:.4f} at epoch {self.best_epoch}, "
                f"validation accuracy {best.get('val_acc', nan):.2%}) and exported model.safetensors. "
                f"Train it longer with `--epochs {self.epochs + 10} --out {self.run_dir} --resume`; "
                f"evaluate it with `cnnlab evaluate {self.run_dir}`."
            )
        return (
            f"Trained {len(self.metrics)} epoch(s); best validation loss {self.best_val_loss:.4f} at epoch "
            f"{self.best_epoch} (validation accuracy {best.get('val_acc', nan):.2%}; last epoch "
            f"{last.get('val_acc', nan):.2%}). Trainable parameters {self.params.get('trainable', 0):,} "
            f"of {self.params.get('total', 0):,}. The run folder is {self.run_dir}: config.yaml, "
            "metrics.csv, curves.png, checkpoints/best.ckpt and last.ckpt, model.safetensors, classes.json. "
            f"Evaluate it with `cnnlab evaluate {self.run_dir}`; continue it with "
            f"`--out {self.run_dir} --resume`."
        )


def extend_error(exc: CnnlabError, more: str) -> CnnlabError:
    """``exc`` with ``more`` added to its message (same class, errno and parameter)."""
    if isinstance(exc, DiskFullError):
        return DiskFullError(f"{exc.message}; {more}", path=str(exc.filename), errno_code=int(exc.errno or 0))
    return type(exc)(f"{exc.message}; {more}", param=exc.param)


def keep_best(
    exc: CnnlabError, *, module: nn.Module, model: nn.Module, info: dict[str, Any],
    rows: list[dict[str, Any]], run_dir: Path,
) -> CnnlabError:
    """A run stopped by a NaN loss or a full disk: export its best checkpoint, say where it went.

    Args:
        exc: The error that stopped the run.
        module: The Lightning module (the checkpoint's keys are its keys).
        model: The network inside it (what ``model.safetensors`` holds).
        info: The contents of ``run.json``.
        rows: The metrics of the epochs so far.
        run_dir: The run folder.

    Returns:
        ``exc`` with the outcome added: the best epoch's weights in ``model.safetensors`` (and
        ``run.json``), or, when even that cannot be written, where the weights are and how to export them.
    """
    best_ckpt, dest = run_dir / "checkpoints" / "best.ckpt", run_dir / "model.safetensors"
    if not best_ckpt.is_file():
        return exc
    try:
        epoch = export_best(module, model, best_ckpt, dest, info)
        row = next((r for r in rows if int(r["epoch"]) == epoch), None)
        extra = {"best_epoch": epoch, "best_val_loss": float(row["val_loss"])} if row else {}
        write_json(run_dir / "run.json", {**info, **extra})
    except DiskFullError:
        return extend_error(exc, f"the best weights so far are in {best_ckpt}: free space, then resume "
                                 f"the run (`out` {run_dir} `resume`) to finish it and export them")
    except RunFileError as err:
        return extend_error(exc, f"nothing exported ({err.message})")
    return extend_error(exc, f"the best weights so far (epoch {epoch}) are exported to {dest}")


def nothing_to_do(cfg: TrainConfig, info: dict[str, Any], *, rank: int = 0) -> RunResult:
    """The result of resuming a finished run (``info``: its ``run.json``): nothing trained or written."""
    from ..train.callbacks import read_metrics

    rows = read_metrics(cfg.run_dir / "metrics.csv")
    return RunResult(
        run_dir=cfg.run_dir, best_val_loss=float(info["best_val_loss"]), metrics=[dict(r) for r in rows],
        best_epoch=int(info["best_epoch"]), params=dict(info.get("params", {})),
        num_classes=int(info.get("num_classes", 0)), already_done=True, epochs=cfg.epochs, global_rank=rank,
    )
