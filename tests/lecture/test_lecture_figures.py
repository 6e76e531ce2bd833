"""Learning curves (chance level, readable loss axis) and the CAM top-k channels view (overlays, class names):
each figure is written as a PNG and opened, and what it says is read back from its artists."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab._io import save_figure
from cnnlab.interpret import explain, top_channels
from cnnlab.models import create_model
from cnnlab.report import interpret_plots as plots
from cnnlab.report.grids import title_overlaps
from cnnlab.report.plots import curves_figure, loss_axis_limit


def _rows(train_loss: list[float], val_loss: list[float]) -> list[dict[str, float]]:
    return [{"epoch": i + 1, "train_loss": t, "train_acc": 0.5 + 0.04 * i, "val_loss": v,
             "val_acc": 0.5 + 0.03 * i} for i, (t, v) in enumerate(zip(train_loss, val_loss, strict=True))]


def _labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_curves_show_the_chance_level(tmp_path: Path) -> None:
    fig = curves_figure(_rows([2.0, 1.2, 0.9, 0.7], [1.8, 1.1, 0.95, 0.8]), title="t", num_classes=10)
    loss_ax, acc_ax = fig.axes
    assert "chance (10%)" in _labels(acc_ax)
    assert any(label.startswith("uniform guess (ln 10 = 2.30)") for label in _labels(loss_ax))
    chance = [ln for ln in acc_ax.lines if list(ln.get_ydata()) == [0.1, 0.1]]
    assert len(chance) == 1
    guess = [ln for ln in loss_ax.lines if np.allclose(ln.get_ydata(), math.log(10))]
    assert len(guess) == 1
    assert loss_ax.get_ylabel() == "loss"  # nothing clipped: the axis says plain "loss"
    binary = curves_figure(_rows([0.7, 0.6], [0.69, 0.65]), num_classes=1)
    assert "chance (50%)" in _labels(binary.axes[1])
    with Image.open(save_figure(tmp_path / "curves.png", fig)) as im:
        assert im.format == "PNG" and im.size[0] >= 900 and im.size[1] >= 350  # 10 x 4 in at 100 dpi, trimmed
    assert title_overlaps(fig) == []


def test_an_absurd_first_loss_is_clipped_and_marked(tmp_path: Path) -> None:
    val = [48.0, 0.9, 0.7, 0.6, 0.55]
    fig = curves_figure(_rows([3.1, 1.0, 0.8, 0.7, 0.6], val), num_classes=10)
    loss_ax = fig.axes[0]
    top = loss_ax.get_ylim()[1]
    assert 2.3 < top < 5.0  # keeps the uniform-guess level in view, not 48
    assert "clipped" in loss_ax.get_ylabel()
    markers = [ln for ln in loss_ax.lines if ln.get_marker() == "^"]
    assert len(markers) == 1 and markers[0].get_xdata()[0] == 1  # epoch 1's validation loss
    assert any(t.get_text() == "48" for t in loss_ax.texts)
    drawn = max(max(ln.get_ydata()) for ln in loss_ax.lines)
    assert drawn <= top
    with Image.open(save_figure(tmp_path / "clipped.png", fig)) as im:
        assert im.size[0] >= 900 and im.size[1] >= 350
    assert loss_axis_limit([2.3, 1.0, 0.8], math.log(10)) is None  # an ordinary curve keeps its range


def test_top_channels_overlay_each_channel_and_name_the_class(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("mnist_cnn_gap").eval()
    raw = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    res = explain(model, raw.float() / 255)
    top = top_channels(res, k=4)
    names = [f"item{i}" for i in range(10)]
    fig = plots.top_channels_figure(raw[1], res, top, 1, class_names=names)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == f"{res.method}: {names[int(res.targets[1])]}"
    assert "class " not in titles[0]
    tiles = [ax.get_images()[0].get_array() for ax in fig.axes[1:5]]
    for j, tile in enumerate(tiles):  # an RGB overlay at image size, not a bare 3x3 activation map
        assert tile.shape == (28, 28, 3)
        expected = plots.overlays(raw[1:2], plots._stretch(top.activations[1, j : j + 1]))[0]
        assert np.allclose(np.asarray(tile), expected.permute(1, 2, 0).numpy() / 255.0, atol=1e-6)
    unnamed = plots.top_channels_figure(raw[0], res, top, 0)
    assert unnamed.axes[0].get_title().endswith(f"class {int(res.targets[0])}")
    with Image.open(save_figure(tmp_path / "channels.png", fig)) as im:
        assert im.format == "PNG" and im.size[0] > 300
