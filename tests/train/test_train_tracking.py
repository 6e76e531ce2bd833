"""`--logger tensorboard`, every group's learning rate in metrics.csv, and `--lr find`.

One run is shared by the module: ``--transfer full`` from a local weights file (two parameter groups,
the backbone at 0.1x), the TensorBoard logger and the learning-rate finder (30 steps instead of 100, to
stay small). Its event files are read back with tensorboard's own EventAccumulator.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import save_file
from typer.testing import CliRunner

from cnnlab.cli import app
from cnnlab.errors import ArgumentError
from cnnlab.train import fit
from cnnlab.train.config import TrainConfig, parse_lr

EPOCHS = 2
BASE: dict[str, Any] = {"data": "sample", "model": "mnist_cnn", "limit": 200, "batch_size": 32,
                        "epochs": EPOCHS, "progress": False, "seed": 0, "transfer": "full"}


def _metrics(run: Path) -> list[dict[str, float]]:
    with open(run / "metrics.csv", newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    import cnnlab.train.lr_find as lr_find
    from cnnlab.models import create_model

    tmp = tmp_path_factory.mktemp("tracked")
    torch.manual_seed(1)
    save_file(create_model("mnist_cnn").state_dict(), str(tmp / "start.safetensors"))
    cfg = TrainConfig(**BASE, out=str(tmp / "run"), weights=str(tmp / "start.safetensors"),
                      logger="tensorboard", lr_find=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lr_find, "STEPS", 30)
        result = fit(cfg)
    return tmp / "run", result


@pytest.mark.slow
def test_event_files_hold_every_epoch_and_one_lr_series_per_group(tracked: tuple[Path, Any]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _ = tracked
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    rows = _metrics(run)
    val_acc = [e.value for e in acc.Scalars("val_acc")]
    assert len(val_acc) == EPOCHS
    assert val_acc == pytest.approx([r["val_acc"] for r in rows], abs=1e-6)  # the same numbers as the csv
    lr_series = sorted(t for t in tags["scalars"] if t.startswith("lr"))
    assert lr_series == ["lr-Adam/backbone", "lr-Adam/head"]  # one per parameter group, nothing twice
    head = [e.value for e in acc.Scalars("lr-Adam/head")]
    backbone = [e.value for e in acc.Scalars("lr-Adam/backbone")]
    assert head and len(head) == len(backbone)
    assert backbone == pytest.approx([0.1 * v for v in head], rel=1e-5)
    assert head[0] == pytest.approx(rows[0]["lr_head"], rel=1e-6)
    assert {"train_loss", "val_loss", "train_acc", "train_loss_step"} <= set(tags["scalars"])
    assert len(acc.Images("curves")) == EPOCHS and len(acc.Images("gradcam")) == EPOCHS
    hparams = yaml.safe_load((run / "tensorboard" / "hparams.yaml").read_text())
    assert hparams["transfer"] == "full" and hparams["logger"] == "tensorboard"


@pytest.mark.slow
def test_metrics_csv_keeps_every_group_lr(tracked: tuple[Path, Any]) -> None:
    run, result = tracked
    rows = _metrics(run)
    assert len(rows) == EPOCHS
    for row in rows:
        assert row["lr_head"] == row["lr"] > 0
        assert row["lr_backbone"] == pytest.approx(0.1 * row["lr_head"], rel=1e-12)
    assert result.metrics[0]["lr_backbone"] == rows[0]["lr_backbone"]


@pytest.mark.slow
def test_lr_find_writes_its_figure_and_records_a_finite_suggestion(tracked: tuple[Path, Any]) -> None:
    from cnnlab.report.context import RunContext
    from cnnlab.report.document import Facts, Picture
    from cnnlab.report.sec_training import training_section

    run, _ = tracked
    png = (run / "lr_find.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["lr_find"] is True and isinstance(saved["lr"], float) and math.isfinite(saved["lr"])
    assert 1e-7 < saved["lr"] < 1.0
    assert _metrics(run)[0]["lr_head"] == saved["lr"]  # the suggestion is the rate trained with
    notices = json.loads((run / "run.json").read_text())["notices"]
    assert any(f"{saved['lr']:.3g}, suggested by the learning-rate finder" in n for n in notices)
    blocks = training_section(RunContext(run)).blocks
    facts = [b for b in blocks if isinstance(b, Facts) and "learning-rate finder" in str(b)]
    assert facts and f"{saved['lr']:.3g}" in str(facts[0])
    assert any(isinstance(b, Picture) and b.png == png for b in blocks)


@pytest.mark.slow
def test_the_config_reruns_the_found_rate_without_the_finder(
    tracked: tuple[Path, Any], tmp_path: Path
) -> None:
    run, _ = tracked
    again = TrainConfig.from_yaml(run / "config.yaml").replace(out=str(tmp_path / "again"), logger="csv")
    fit(again)
    assert not (tmp_path / "again" / "lr_find.png").exists()
    assert (tmp_path / "again" / "metrics.csv").read_text() == (run / "metrics.csv").read_text()


def test_lr_option_takes_a_number_or_find() -> None:
    assert parse_lr(None) == (None, False)
    assert parse_lr("3e-4") == (3e-4, False)
    assert parse_lr("find") == (None, True) == parse_lr(" FIND ")
    with pytest.raises(ArgumentError, match="number such as 3e-4, or find"):
        parse_lr("fast")
    typed = TrainConfig(lr="find")  # type: ignore[arg-type]  # the text `cnnlab train --lr` passes on
    assert typed.lr is None and typed.lr_find is True
    assert TrainConfig(lr="0.01").lr == 0.01  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["fast", "x", "", "finder", "1e-3x"])
def test_lr_option_refuses_other_text_in_one_line(value: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["train", "--data", "sample", "--lr", value, "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: --lr") and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_lr_find_is_refused_for_a_head_fitted_in_closed_form() -> None:
    from cnnlab.train.lr_find import check_lr_find

    cfg = TrainConfig(lr_find=True, transfer="features", head="logreg", pretrained=True)
    with pytest.raises(ArgumentError) as info:
        check_lr_find(cfg)
    assert info.value.cli_message().startswith("--lr find: the logreg head is fitted in closed form")
    check_lr_find(cfg.replace(head="linear"))  # a head trained by steps: the finder has a rate to find


@pytest.mark.slow
def test_a_resumed_run_purges_the_points_a_killed_run_logged_after_its_checkpoint(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    from cnnlab.runfolder.folder import checkpoint_step

    run = tmp_path / "run"
    cfg = TrainConfig(data="sample", model="mnist_cnn", limit=64, batch_size=32, epochs=1, progress=False,
                      seed=0, logger="tensorboard", out=str(run))
    fit(cfg)
    step = checkpoint_step(run / "checkpoints" / "last.ckpt")
    with SummaryWriter(str(run / "tensorboard")) as killed:  # epoch 2 logged, then kill -9 before its save
        killed.add_scalar("val_acc", 123.0, step + 2)
    fit(cfg.replace(epochs=2, resume=True))
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    points = acc.Scalars("val_acc")
    assert 123.0 not in [p.value for p in points] and len(points) == 2, points
    assert [p.value for p in points] == pytest.approx([r["val_acc"] for r in _metrics(run)], abs=1e-6)
