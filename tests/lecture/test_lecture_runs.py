"""The measurements on trained sample runs: probe accuracy rises with depth, invariance reproduces
``evaluate``'s accuracy at shift 0 exactly, and ``evaluate`` draws the top-loss gallery (JSON unchanged)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cnnlab.cli import app
from cnnlab.interpret.invariance import rotate_images, shift_images
from cnnlab.interpret.top_losses import top_loss_gallery
from cnnlab.report.evaluation_plots import top_losses_figure
from cnnlab.report.grids import title_overlaps
from cnnlab.runfolder.folder import load_run
from cnnlab.train.evaluate import evaluate, load_eval_data

pytestmark = pytest.mark.slow


def _run(*args: str) -> dict:
    r = CliRunner().invoke(app, [*args])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _png(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_probe_accuracy_rises_with_depth_and_both_figures_are_written(sample_run, tmp_path: Path) -> None:
    run = sample_run("mnist_cnn")
    args = ["probe", str(run), "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "--json",
            "--map-points", "400", "--no-progress"]
    doc = _run(*args)
    names = [s["name"] for s in doc["stages"]]
    assert names == ["input", "features.block1", "features.block2", "features.block3", "head.fc input"]
    acc = [s["val_accuracy"] for s in doc["stages"]]
    assert all(a < b for a, b in itertools.pairwise(acc)), acc  # deeper separates better
    assert acc[0] < 0.35 < 0.6 < acc[-1] and doc["chance"] == pytest.approx(0.1)
    assert [s["dim"] for s in doc["stages"]] == [1, 32, 64, 64, 64]
    assert _png(tmp_path / "probe.png")[0] > 500 and _png(tmp_path / "embedding_map.png")[0] > 800
    assert json.loads((tmp_path / "probe.json").read_text())["stages"] == doc["stages"]
    assert doc["cached"] is False
    again = _run(*args, "--no-tsne")
    assert again["cached"] is True and again["stages"] == doc["stages"]  # the cache gives the same numbers


def test_invariance_at_shift_0_is_evaluates_accuracy(sample_run, tmp_path: Path) -> None:
    runs = [sample_run("mnist_mlp"), sample_run("mnist_cnn_gap")]
    out = tmp_path / "inv.png"
    doc = _run("invariance", *map(str, runs), "--max-shift", "3", "--angles", "10", "--out", str(out),
               "--json", "--no-progress")
    assert json.loads(out.with_suffix(".json").read_text()) == doc
    assert _png(out)[0] > 800
    for run, curve in zip(runs, doc["runs"], strict=True):
        evaluation = _run("evaluate", str(run), "--json")
        assert curve["shift_accuracy"][0] == evaluation["accuracy"]  # exactly, not approximately
        assert curve["rotation_accuracy"][0] == evaluation["accuracy"]
        assert curve["shifts"] == [0, 1, 2, 3] and curve["angles"] == [0.0, 10.0]
        assert curve["images"] == 1000 and curve["chance"] == pytest.approx(0.1)
        assert curve["shift_accuracy"][3] < curve["shift_accuracy"][0]  # a 3-px shift costs accuracy


def test_shift_and_rotate_move_pixels_as_said() -> None:
    x = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4)
    right = shift_images(x, 0, 1)
    assert right[0, 0, :, 0].tolist() == [0, 0, 0, 0] and torch.equal(right[..., 1:], x[..., :3])
    up = shift_images(x, -2, 0)
    assert torch.equal(up[..., :2, :], x[..., 2:, :]) and int(up[..., 2:, :].sum()) == 0
    assert torch.equal(torch.roll(x, 1, dims=3)[..., 1:], right[..., 1:])
    assert torch.equal(rotate_images(x, 0.0), x)
    square = torch.zeros(1, 1, 9, 9, dtype=torch.uint8)
    square[..., 4, 6] = 255  # right of the centre -> a quarter turn counter-clockwise puts it above
    assert int(rotate_images(square, 90.0)[0, 0].flatten().argmax()) == 2 * 9 + 4


def test_evaluate_draws_the_top_losses_gallery_and_keeps_its_json(sample_run) -> None:
    for model, with_cam in (("mnist_cnn", True), ("mnist_mlp", False)):
        run = sample_run(model)
        doc = _run("evaluate", str(run), "--json", "--top-losses", "6")
        assert set(doc) == {"accuracy", "loss", "per_class", "confusion", "top_losses", "weights"}
        assert "index" in doc["top_losses"][0]  # IDX data: the JSON still names images by index
        assert _png(run / "top_losses.png")[0] > 400

        loaded = load_run(run)
        dataset, _ = load_eval_data(loaded)
        result = evaluate(loaded, dataset, top_losses=6)
        gallery = top_loss_gallery(loaded, dataset, result)
        fig = top_losses_figure(gallery)
        assert (gallery.cams is not None) == with_cam
        titles = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("true: ")]
        assert len(titles) == 6
        for t, rec in zip(titles, doc["top_losses"], strict=True):
            assert t.startswith(f"true: {rec['label']} ") and f"pred: {rec['predicted']} " in t
            assert f"#{rec['index']}" in t
        for p_label, p_pred in zip(gallery.p_label, gallery.p_predicted, strict=True):
            assert 0.0 <= p_label <= p_pred <= 1.0  # the predicted class is the most probable one
        assert title_overlaps(fig) == []
        if not with_cam:
            assert "no convolution" in fig.get_suptitle()
