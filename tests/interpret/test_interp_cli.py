"""CLI smoke tests: explain / features / dream on a tiny run folder and on --model, writing PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cnnlab.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnlab.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("interp-run") / "run"
    fit(TrainConfig(data="sample", model="mnist_cnn_gap", limit=96, batch_size=32, epochs=1, progress=False,
                    out=str(out)))
    return out


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        arr = np.zeros((28, 28), np.uint8)
        arr[6 + 4 * i : 22, 10 : 14 + 2 * i] = 255
        arr = np.clip(arr + rng.integers(0, 30, arr.shape), 0, 255).astype(np.uint8)
        p = folder / f"digit{i}.png"
        Image.fromarray(arr, mode="L").save(p)
        paths.append(p)
    return paths


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _is_png(path: str | Path) -> bool:
    with Image.open(path) as im:
        return im.format == "PNG" and im.size[0] > 10


def test_explain_run_writes_overlays_and_numbers(run_dir: Path, digits: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "cam.png"
    res = _json(runner.invoke(app, ["explain", str(run_dir), *map(str, digits), "--out", str(out), "--json",
                                    "--channels", "3", "--faithfulness", "--method", "gradcam++"]))
    assert res["method"] == "gradcam++" and res["figure"] == str(out) and _is_png(out)
    assert len(res["images"]) == 2
    for rec in res["images"]:
        assert _is_png(rec["overlay"]) and _is_png(rec["channels_figure"])
        assert 0.0 <= rec["probability"] <= 1.0 and len(rec["top_channels"]) == 3
        assert 0.0 <= rec["deletion_auc"] <= 1.0 and 0.0 <= rec["insertion_auc"] <= 1.0
        assert all(0 <= v < 28 for v in rec["peak_yx"])
    assert _is_png(res["faithfulness_figure"])


def test_explain_target_by_name_and_cam_method(run_dir: Path, digits: list[Path], tmp_path: Path) -> None:
    classes = json.loads((run_dir / "classes.json").read_text())
    res = _json(runner.invoke(app, ["explain", str(run_dir), str(digits[0]), "--target", classes[3],
                                    "--method", "cam", "--out", str(tmp_path / "c.png"), "--json"]))
    assert res["images"][0]["target"] == 3 and res["images"][0]["class"] == classes[3]


def test_features_and_dream_on_run(run_dir: Path, digits: list[Path], tmp_path: Path) -> None:
    res = _json(runner.invoke(app, ["features", str(run_dir), str(digits[0]), "--layer", "Conv2d:0",
                                    "--out", str(tmp_path / "f.png"), "--json"]))
    assert res["shape"][0] == 32 and _is_png(res["figure"]) and len(res["channel_max"]) == 32
    res = _json(runner.invoke(app, ["features", str(run_dir), *map(str, digits), "--layer", "Conv2d:-1",
                                    "--channel", "5", "--out", str(tmp_path / "c.png"), "--json"]))
    assert res["channel"] == 5 and len(res["image_max"]) == 2 and _is_png(res["figure"])
    assert 0.0 <= res["active_fraction"] <= 1.0
    res = _json(runner.invoke(app, ["dream", str(run_dir), "--layer", "Conv2d:-1", "--filters", "0-3",
                                    "--steps", "8", "--out", str(tmp_path / "d.png"), "--json"]))
    assert [f["filter"] for f in res["filters"]] == [0, 1, 2, 3] and _is_png(res["figure"])


def test_model_option_and_user_errors(digits: list[Path], tmp_path: Path) -> None:
    res = _json(runner.invoke(app, ["explain", "--model", "mnist_cnn", str(digits[0]),
                                    "--out", str(tmp_path / "m.png"), "--json"]))
    assert res["source"] == "mnist_cnn" and _is_png(res["images"][0]["overlay"])
    bad = runner.invoke(app, ["explain", "--model", "mnist_cnn", str(digits[0]), "--layer", "nope"])
    assert bad.exit_code == 2 and "valid names" in bad.output.lower() and "Traceback" not in bad.output
    bad = runner.invoke(app, ["explain", "--model", "mnist_cnn", str(digits[0]), "--method", "cam"])
    assert bad.exit_code == 2 and "--method gradcam" in bad.output
    bad = runner.invoke(app, ["explain", "--model", "mnist_cnn", str(digits[0]), "--method", "bogus"])
    assert bad.exit_code == 2 and "gradcam" in bad.output
    bad = runner.invoke(app, ["dream", "--model", "mnist_cnn", "--layer", "Conv2d:0", "--filters", "a-b"])
    assert bad.exit_code == 2 and "--filters" in bad.output


@pytest.mark.slow
def test_dream_lite0_every_filter_rises(tmp_path: Path) -> None:
    """Issue 22: on the pretrained net, --layer auto (a middle stage) and the pre-activation objective
    lift every filter above its start and above 0 (the last stage's ReLU6 map left 7 of 8 at 0.00)."""
    res = _json(runner.invoke(app, ["dream", "--model", "efficientnet_lite0", "--filters", "0-7",
                                    "--steps", "48", "--size", "96", "--out", str(tmp_path / "d.png"),
                                    "--json"]))
    assert res["weights"] == "pretrained" and res["layer"] == "features.blocks.2"
    assert [f["filter"] for f in res["filters"]] == list(range(8)) and _is_png(res["figure"])
    for f in res["filters"]:
        assert f["end"] > f["start"] and f["end"] > 0 and f["rose"], f


@pytest.mark.slow
def test_dream_dead_relu6_map_rises_through_its_pre_activation(tmp_path: Path) -> None:
    """features.bn2 (BatchNormAct2d ending in an in-place ReLU6) is 0 for most filters at the start: the
    ascent on the ReLU6's input reaches them all."""
    res = _json(runner.invoke(app, ["dream", "--model", "efficientnet_lite0", "--layer", "features.bn2",
                                    "--filters", "0-1", "--steps", "24", "--size", "64",
                                    "--out", str(tmp_path / "d.png"), "--json"]))
    assert res["objective"] == "features.bn2.act input (pre-activation)"
    assert all(f["start"] == 0 for f in res["filters"])  # dead at the start: no gradient through ReLU6
    assert all(f["end"] > 0 and f["rose"] for f in res["filters"]), res["filters"]
