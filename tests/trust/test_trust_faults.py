"""A run stopped by a full disk or a NaN loss keeps what was good: its best epoch is exported.

The disk fills with a write wrapper: ``os.fsync`` of the chosen file's temporary copy raises ENOSPC, as a
full disk does (so it runs without root and without a real small file system); everything else is the
real writer. The message names the file and says to free space or choose ``--out`` elsewhere.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from _trust import TINY

from cnnlab._io import _TEMP_NAME
from cnnlab.errors import DiskFullError, TrainingError
from cnnlab.train import TrainConfig, fit, load_run
from cnnlab.train.callbacks import read_metrics

ARGS = {**TINY, "epochs": 3}


def _cfg(tmp_path: Path, name: str, **kw: Any) -> TrainConfig:
    return TrainConfig(out=str(tmp_path / name), **{**ARGS, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faults")
    fit(_cfg(out, "ref"))
    return out / "ref"


def _fill_disk_at(monkeypatch: pytest.MonkeyPatch, dest: str, nth: int) -> list[str]:
    """The ``nth`` atomic write of a file named ``dest`` fails for lack of space (later ones too)."""
    real, seen = os.fsync, []

    def fsync(fd: int) -> None:
        temp = _TEMP_NAME.match(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        if temp and temp["dest"] == dest:
            seen.append(dest)
            if len(seen) >= nth:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def _no_temps(run: Path) -> None:
    assert not [p for p in run.rglob(".*") if _TEMP_NAME.match(p.name)]


def _exported_equals_best(run: Path) -> int:
    from safetensors.torch import load_file

    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    for key, value in load_file(str(run / "model.safetensors")).items():
        torch.testing.assert_close(value, best["state_dict"][f"model.{key}"], rtol=0, atol=0)
    return int(best["epoch"]) + 1


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name a file descriptor")
def test_disk_full_at_a_checkpoint_exports_the_best_epoch_then_resume_finishes(
    uninterrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "full"
    _fill_disk_at(monkeypatch, "last.ckpt", nth=2)  # the end of epoch 2
    with pytest.raises(DiskFullError) as exc:
        fit(_cfg(tmp_path, "full"))
    message = exc.value.cli_message()
    assert message.startswith(f"disk full while writing {run / 'checkpoints' / 'last.ckpt'}; free space or "
                              "choose --out elsewhere; the best weights so far (epoch 2) are exported to "
                              f"{run / 'model.safetensors'}"), message
    assert "\n" not in message and exc.value.errno == errno.ENOSPC
    assert _exported_equals_best(run) == 2
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0  # old one kept
    assert load_run(run).config.epochs == 3  # a usable run folder
    _no_temps(run)
    monkeypatch.undo()  # space freed
    fit(_cfg(tmp_path, "full", resume=True))
    assert (run / "metrics.csv").read_text() == (uninterrupted / "metrics.csv").read_text()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name a file descriptor")
def test_disk_full_at_the_export_says_how_to_export_and_resume_does_it(
    uninterrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "export"
    _fill_disk_at(monkeypatch, "model.safetensors", nth=1)
    with pytest.raises(DiskFullError) as exc:
        fit(_cfg(tmp_path, "export"))
    message = exc.value.cli_message()
    assert f"training finished and its best weights are in {run / 'checkpoints' / 'best.ckpt'}" in message
    assert f"free space, then resume the run (--out {run} --resume) to export them" in message
    assert not (run / "model.safetensors").exists()
    _no_temps(run)
    monkeypatch.undo()
    result = fit(_cfg(tmp_path, "export", resume=True))
    assert not result.already_done and (run / "model.safetensors").is_file()  # exported, not "nothing to do"
    assert _exported_equals_best(run) == result.best_epoch
    assert (run / "metrics.csv").read_text() == (uninterrupted / "metrics.csv").read_text()
    again = fit(_cfg(tmp_path, "export", resume=True))
    assert again.already_done and again.summary().startswith("Nothing to do")


class _PoisonEpoch(L.Callback):
    """Turns one weight into NaN at the first step of ``epoch`` (0-based): the loss diverges there."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, i: int
    ) -> None:
        if trainer.current_epoch == self.epoch and i == 0:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def test_a_nan_loss_exports_the_best_good_epoch(tmp_path: Path) -> None:
    run = tmp_path / "nan"
    says = r"^training stopped: loss = nan at step 1 in epoch 3 \(diverged\)"
    with pytest.raises(TrainingError, match=says) as exc:
        fit(_cfg(tmp_path, "nan"), callbacks=[_PoisonEpoch(2)])
    assert f"the best weights so far (epoch 2) are exported to {run / 'model.safetensors'}" in str(exc.value)
    assert _exported_equals_best(run) == 2
    loaded = load_run(run)
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())
    assert [r["epoch"] for r in read_metrics(run / "metrics.csv")] == [1, 2]
    import json

    assert json.loads((run / "run.json").read_text())["best_epoch"] == 2


def test_a_nan_in_the_first_epoch_has_nothing_to_export(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="no checkpoint had been written yet") as exc:
        fit(_cfg(tmp_path, "nan1"), callbacks=[_PoisonEpoch(0)])
    assert "exported" not in str(exc.value) and not (tmp_path / "nan1" / "model.safetensors").exists()
