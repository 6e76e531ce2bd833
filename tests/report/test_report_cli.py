"""`cnnlab report` on the command line, and the header's command that reproduces a run."""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from cnnlab.cli import app
from cnnlab.report.sec_header import NOT_REPRODUCED, train_command
from cnnlab.train.config import TrainConfig

runner = CliRunner()

CONFIGS = [
    TrainConfig(),
    TrainConfig(data="sample", model="mnist_cnn", epochs=3, out="runs/demo/run"),
    TrainConfig(
        data="data/cats dogs",
        model="efficientnet_lite0",
        pretrained=True,
        transfer="partial",
        unfreeze_layers=("blocks.5", "blocks.6"),
        deterministic=False,
        channels_last=False,
        lr=3e-4,
        augment="standard",
        img_size=64,
        head="mlp",
        epochs=5,
        fine_tune_epochs=2,
        data_dir="d",
        limit=50,
        val_split=0.1,
        devices="auto",
        schedule="cosine",
        optimizer="sgd",
        weight_decay=1e-4,
        cache_dir="c",
        workers=2,
        train_bn=True,
        backbone_lr_mult=0.5,
        num_nodes=2,
        strategy="ddp",
        accelerator="cpu",
        batch_size=16,
        seed=7,
        out="o",
    ),
    TrainConfig(model="efficientnet_lite0", weights="w.safetensors", transfer="full", channels_last=True),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["defaults", "demo", "every-option", "weights"])
def test_the_command_in_the_header_trains_the_same_config(
    cfg: TrainConfig, monkeypatch, tmp_path: Path
) -> None:
    """The command is parsed by the real `cnnlab train` (fit replaced): it must give back the same config."""
    seen: list[TrainConfig] = []

    def fake_fit(config: TrainConfig, **_: object) -> SimpleNamespace:
        seen.append(config)
        return SimpleNamespace(global_rank=1)

    monkeypatch.setattr("cnnlab.train.run.fit", fake_fit)
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(train_command(cfg))
    assert argv[:2] == ["cnnlab", "train"]
    result = runner.invoke(app, argv[1:])
    assert result.exit_code == 0, result.output
    (parsed,) = seen
    want = {k: v for k, v in cfg.to_dict().items() if k not in NOT_REPRODUCED}
    got = {k: v for k, v in parsed.to_dict().items() if k not in NOT_REPRODUCED}
    assert got == want


def test_report_writes_one_file_in_the_run_folder(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    result = runner.invoke(app, ["report", str(run), "--top-losses", "4"])
    assert result.exit_code == 0, result.output
    page = run / "report.html"
    assert f"wrote {page}: 1 run(s)" in result.output
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert f"cnnlab report {run} --top-losses 4" in html
    assert not [p for p in run.iterdir() if p.name.startswith(".report.html")]  # no temporary file left


def test_report_of_a_folder_that_is_not_a_run_is_one_error_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        f"error: {tmp_path}: not a cnnlab run folder (no config.yaml); give a folder `cnnlab train` wrote"
    ]
    assert not (tmp_path / "report.html").exists()
