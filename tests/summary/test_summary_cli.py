"""Acceptance 5 and the CLI: `cnnlab summary` / `cnnlab models` as a user runs them (a real process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _cnnlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, timeout=300
    )


def test_input_too_small_names_the_layer() -> None:
    r = _cnnlab("summary", "mnist_cnn", "--input", "1x8x8")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith("error: ") and "too small" in lines[0]
    assert "features.block2.pool" in lines[0]  # 8 -> conv 6 -> pool 3 -> conv 1 -> this 2x2 pool
    assert r.stdout == ""


def test_unknown_model_lists_close_names() -> None:
    r = _cnnlab("summary", "resnet_18")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip()
    assert "\n" not in line and "resnet18" in line and "unknown model" in line


def test_summary_json_is_the_documented_contract() -> None:
    r = _cnnlab("summary", "mnist_cnn", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"total_params", "trainable_params", "mult_adds", "layers"} <= set(d)
    assert (d["total_params"], d["trainable_params"], d["mult_adds"]) == (93_322, 93_322, 2_824_266)
    for layer in d["layers"]:
        assert {"name", "type", "output_shape", "params", "receptive_field", "jump"} <= set(layer)
    conv3 = next(x for x in d["layers"] if x["name"] == "features.block3.conv")
    assert (conv3["output_shape"], conv3["params"], conv3["receptive_field"], conv3["jump"]) == (
        [64, 3, 3],
        36_928,
        18,
        4,
    )
    leaves = [x for x in d["layers"] if x["type"] in ("Conv2d", "Linear")]
    assert sum(x["params"] for x in leaves) == d["total_params"]  # rows add up to the total


def test_summary_input_and_num_classes_options() -> None:
    from typer.testing import CliRunner

    from cnnlab.cli import app

    res = CliRunner().invoke(
        app, ["summary", "mnist_cnn_gap", "--input", "1x40x40", "--num-classes", "3", "--json"]
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["input_size"] == [1, 40, 40] and d["layers"][-1]["output_shape"] == [3]
    bad = CliRunner().invoke(app, ["summary", "mnist_cnn", "--input", "28x28"])
    assert bad.exit_code == 2


def test_models_json_lists_the_registry() -> None:
    from typer.testing import CliRunner

    from cnnlab.cli import app
    from cnnlab.models import list_models

    res = CliRunner().invoke(app, ["models", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert [m["name"] for m in d["models"]] == list_models()
    lite = next(m for m in d["models"] if m["name"] == "efficientnet_lite0")
    assert lite["pretrained_offline"] is True


def test_summary_of_a_run_folder_without_config_is_a_clear_error(tmp_path: pytest.TempPathFactory) -> None:
    from typer.testing import CliRunner

    from cnnlab.cli import app

    res = CliRunner().invoke(app, ["summary", str(tmp_path)])
    assert res.exit_code == 2 and "config.yaml" in res.output


def test_summary_of_a_run_folder(tmp_path) -> None:
    """`cnnlab summary RUN` reads the run through cnnlab.train.load_run (the run's model and input size)."""
    from typer.testing import CliRunner

    train = pytest.importorskip("cnnlab.train.run")
    from cnnlab.cli import app
    from cnnlab.train.config import TrainConfig

    cfg = TrainConfig(
        data="sample",
        model="mnist_cnn_gap",
        limit=64,
        batch_size=32,
        epochs=1,
        progress=False,
        out=str(tmp_path / "run"),
    )
    train.fit(cfg)
    res = CliRunner().invoke(app, ["summary", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["total_params"] == 56_394 and d["input_size"] == [1, 28, 28]


def test_frozen_params_per_layer() -> None:
    from cnnlab.models import create_model
    from cnnlab.summary import summarize

    m = create_model("mnist_cnn")
    for p in m.features.parameters():
        p.requires_grad_(False)
    s = summarize(m, (1, 28, 28))
    assert s.trainable_params == 93_322 - 55_744 and s.frozen_params == 55_744
    assert s.layer("features.block2.conv").frozen_params == 18_496
    assert s.layer("head.fc1").frozen_params == 0
    d = s.to_dict()
    assert d["frozen_params"] == 55_744
