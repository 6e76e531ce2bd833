"""Convolution arithmetic: the formula drawn in the figure, `cnnlab.filters.output_size` and PyTorch's own
output agree for every geometry, given by numbers or read off a model's layer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from cnnlab._io import save_figure
from cnnlab.cli import app
from cnnlab.filters import output_size
from cnnlab.models import create_model
from cnnlab.models.spec import build_from_spec
from cnnlab.report.grids import title_overlaps
from cnnlab.report.lecture_plots import FORMULA_GID, conv_arithmetic_figure
from cnnlab.summary.arithmetic import arithmetic, layer_arithmetic, torch_output

# (n, k, p, s, d, kind)
GEOMETRIES = [
    (28, 3, 0, 1, 1, "conv"), (7, 3, 1, 2, 1, "conv"), (9, 3, 0, 1, 2, "conv"), (10, 4, 2, 3, 2, "conv"),
    (5, 5, 2, 1, 1, "conv"), (26, 2, 0, 2, 1, "maxpool"), (11, 3, 1, 2, 1, "maxpool"),
    (9, 3, 0, 1, 2, "maxpool"), (13, 3, 1, 2, 1, "avgpool"), (150, 7, 3, 2, 1, "conv"),
]


def _torch_layer(n: int, k: int, p: int, s: int, d: int, kind: str) -> tuple[int, int]:
    layer: nn.Module
    if kind == "conv":
        layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
    elif kind == "maxpool":
        layer = nn.MaxPool2d(k, stride=s, padding=p, dilation=d)
    else:
        layer = nn.AvgPool2d(k, stride=s, padding=p)
    with torch.no_grad():
        shape = layer(torch.zeros(1, 1, n, n)).shape
    return int(shape[-2]), int(shape[-1])


def _formula_number(fig) -> int:
    (text,) = [t for ax in fig.axes for t in ax.texts if t.get_gid() == FORMULA_GID]
    last = text.get_text().splitlines()[1]
    match = re.search(r"= (\d+)$", last)
    assert match, last
    return int(match.group(1))


@pytest.mark.parametrize(("n", "k", "p", "s", "d", "kind"), GEOMETRIES)
def test_formula_equals_output_size_and_torch(n: int, k: int, p: int, s: int, d: int, kind: str) -> None:
    a = arithmetic(n, k, p=p, s=s, d=d, kind=kind)  # type: ignore[arg-type]
    fig = conv_arithmetic_figure(a)
    drawn = _formula_number(fig)
    expected = output_size(n, k, pad=p, stride=s, dilation=d)
    assert drawn == expected == a.out[0] == _torch_layer(n, k, p, s, d, kind)[0] == torch_output(a)[0]
    assert f"({n} + 2·{p} − {d}·({k} − 1) − 1) / {s}" in a.formula()


def test_ceil_mode_pools_round_up_as_torch_does() -> None:
    for n in range(4, 16):
        model = nn.Sequential(nn.MaxPool2d(3, 2, ceil_mode=True))
        a = layer_arithmetic(model, "0", (1, n, n))
        assert a.out == tuple(model(torch.zeros(1, 1, n, n)).shape[-2:]) == torch_output(a)
        assert "⌈" in a.formula()


MODEL_LAYERS = [
    ("mnist_cnn", (1, 28, 28)), ("cats_cnn", (3, 150, 150)),
    ("conv:8:3:padding=same relu conv:8:3:dilation=2:padding=same relu maxpool:3:stride=2:padding=1 "
     "conv:8:5:stride=2", (1, 33, 33)),
]


@pytest.mark.parametrize(("name", "size"), MODEL_LAYERS, ids=["mnist_cnn", "cats_cnn", "spec"])
def test_every_conv_and_pool_of_a_model_matches_its_real_output(name: str, size: tuple[int, int, int],
                                                                ) -> None:
    model = create_model(name) if ":" not in name else build_from_spec(name, input_size=size)
    model.eval()
    outs: dict[str, tuple[int, int]] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, tuple(o.shape[-2:])))
             for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]
    with torch.no_grad():
        model(torch.zeros(1, *size))
    for h in hooks:
        h.remove()
    assert outs
    for i, (layer, real) in enumerate(outs.items()):
        a = layer_arithmetic(model, layer, size)
        assert a.out == real == torch_output(a), layer
        assert int(a.formula(0).rsplit("= ", 1)[1]) == int(a.formula(1).rsplit("= ", 1)[1]) == real[0]
        if i == 0:  # the figure shows that same formula
            assert _formula_number(conv_arithmetic_figure(a)) == real[0]


def test_figure_png_and_layout(tmp_path: Path) -> None:
    fig = conv_arithmetic_figure(layer_arithmetic(create_model("cats_cnn"), "MaxPool2d:-1", (3, 150, 150)))
    with Image.open(save_figure(tmp_path / "a.png", fig)) as im:
        assert im.format == "PNG" and im.size[0] > 600
    assert title_overlaps(fig) == []
    # the two windows one stride apart: k*k taps each, the second shifted by s columns
    taps = {gid: [p for p in fig.axes[0].patches if p.get_gid() == gid] for gid in ("window-1", "window-2")}
    assert len(taps["window-1"]) == len(taps["window-2"]) == 4
    shift = min(p.get_x() for p in taps["window-2"]) - min(p.get_x() for p in taps["window-1"])
    assert shift == pytest.approx(2.0)


def test_cli_numbers_and_model(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["arithmetic", "--n", "7", "--k", "3", "--p", "1", "--s", "2", "--json",
                            "--out", str(tmp_path / "a.png")])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["out"] == doc["torch_out"] == [4, 4]
    assert doc["formula"]["rows"].endswith("= 4")
    r = runner.invoke(app, ["arithmetic", "mnist_cnn", "--layer", "MaxPool2d:0", "--json",
                            "--out", str(tmp_path / "b.png")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["out"] == [13, 13]
    bad = runner.invoke(app, ["arithmetic", "mnist_cnn", "--k", "5"])
    assert bad.exit_code == 2 and "not both" in bad.output
    bad = runner.invoke(app, ["arithmetic", "--n", "2", "--k", "5"])
    assert bad.exit_code == 2 and "--k" in bad.output


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
def test_pooling_figure_shows_the_values_and_each_windows_result(kind: str, tmp_path: Path) -> None:
    """Issue 22: the windows carry numbers, the output cells their max (or mean), the max is marked."""
    fig = conv_arithmetic_figure(arithmetic(6, 2, s=2, kind=kind))
    ax_in, ax_out = fig.axes[0], fig.axes[1]
    values = {(round(t.get_position()[1] - 0.5), round(t.get_position()[0] - 0.5)): int(t.get_text())
              for t in ax_in.texts if t.get_gid() == "value"}
    pooled = [t.get_text() for t in ax_out.texts if t.get_gid() == "pooled"]
    first = [values[(0, 0)], values[(0, 1)], values[(1, 0)], values[(1, 1)]]
    second = [values[(0, 2)], values[(0, 3)], values[(1, 2)], values[(1, 3)]]
    if kind == "maxpool":
        assert pooled == [str(max(first)), str(max(second))]
        marked = [t for t in ax_in.texts if t.get_gid() == "max"]
        assert {int(t.get_text()) for t in marked} == {max(first), max(second)}
    else:
        assert pooled == [f"{sum(first) / 4:.1f}", f"{sum(second) / 4:.1f}"]
    save_figure(tmp_path / "pool.png", fig)
