"""`cnnlab rf`: the drawn theoretical field is summary's number, placed where an exact autograd oracle finds
the unit's field, and the effective field's support (non-zero input gradient) lies inside it.

Placement oracle (independent of the tracker): with every weight positive (1/fan_in), every bias +0.1, the
input all ones and max-pooling swapped for average pooling over the same window (max-pooling routes its
gradient to one element), nothing cancels, so the support of d unit / d input is exactly the unit's field.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from cnnlab._io import save_figure
from cnnlab.cli import app
from cnnlab.models import create_model
from cnnlab.models.spec import build_from_spec
from cnnlab.receptive.view import receptive_field_view
from cnnlab.report.grids import title_overlaps
from cnnlab.report.lecture_plots import FIELD_GID, receptive_field_figure
from cnnlab.summary import summarize

DILATED = ("conv:8:3:padding=same relu conv:8:3:dilation=2:padding=same relu "
           "conv:8:3:dilation=4:padding=same relu conv:8:3:dilation=8:padding=same relu")


def _dilated() -> nn.Module:
    return build_from_spec(DILATED, input_size=(1, 64, 64))


CASES = [
    ("mnist_cnn", lambda: create_model("mnist_cnn"), (1, 28, 28), ["auto", "features.block1.conv",
                                                                    "features.block2.pool"]),
    ("cats_cnn", lambda: create_model("cats_cnn"), (3, 150, 150), ["auto", "features.block3.pool"]),
    ("dilated", _dilated, (1, 64, 64), ["auto", "features.block2.relu"]),
]


def _oracle_box(model: nn.Module, layer: str, size: tuple[int, int, int]) -> tuple[int, int, int, int]:
    m = copy.deepcopy(model).eval()
    for parent in list(m.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                mod.weight.fill_(1.0 / mod.weight[0].numel())
                if mod.bias is not None:
                    mod.bias.fill_(0.1)
    out: list[torch.Tensor] = []
    handle = m.get_submodule(layer).register_forward_hook(lambda _m, _i, o: out.append(o))
    x = torch.ones(1, *size, requires_grad=True)
    try:
        m(x)
    finally:
        handle.remove()
    o = out[0]
    (g,) = torch.autograd.grad(o[0, :, o.shape[2] // 2, o.shape[3] // 2].sum(), x)
    support = g[0].abs().sum(0) > 0
    rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def _drawn_box(fig) -> tuple[float, float, float, float]:
    """(top, left, rows, cols) of the theoretical-field rectangle, read back from the figure's artists."""
    (patch,) = [p for ax in fig.axes for p in ax.patches if p.get_gid() == FIELD_GID]
    x0, y0 = patch.get_xy()
    return y0 + 0.5, x0 + 0.5, patch.get_height(), patch.get_width()


@pytest.mark.parametrize(("name", "build", "size", "layers"), CASES, ids=[c[0] for c in CASES])
def test_drawn_field_is_summarys_and_lies_where_the_oracle_finds_it(name, build, size, layers,
                                                                    tmp_path: Path) -> None:
    model = build().eval()
    summary = summarize(model, size)
    for layer in layers:
        view = receptive_field_view(model, torch.rand(4, *size), layer=layer, model_name=name)
        fig = receptive_field_figure(view)
        top, left, rows, cols = _drawn_box(fig)
        assert (rows, cols) == tuple(summary.layer(view.layer).field.rf), (name, layer)  # summary's number
        o_top, o_left, o_bottom, o_right = _oracle_box(model, view.layer, size)
        assert (o_bottom - o_top + 1, o_right - o_left + 1) == (rows, cols)
        assert (top, left) == (o_top, o_left), (name, layer)  # placed on the pixels the unit depends on
        # the effective field: exactly zero gradient outside the theoretical field, and not zero inside
        support = view.support_box()
        assert support is not None and view.support_inside()
        outside = view.erf.clone()
        outside[int(top) : int(top + rows), int(left) : int(left + cols)] = 0
        assert float(outside.abs().max()) == 0.0
        if layer == "auto":  # drawn once per model: the PNG opens and no title overlaps a panel
            path = save_figure(tmp_path / f"{name}.png", fig)
            with Image.open(path) as im:
                assert im.size[0] > 800 and im.size[1] > 300
            assert title_overlaps(fig) == []


def test_dilation_grows_the_field_exponentially_and_pooling_doubles_the_growth() -> None:
    view = receptive_field_view(_dilated(), torch.rand(2, 1, 64, 64))
    assert [r.rf[0] for r in view.layers] == [3, 7, 15, 31]  # +2, +4, +8, +16
    assert [r.what for r in view.layers] == ["conv 3x3", "conv 3x3 d2", "conv 3x3 d4", "conv 3x3 d8"]
    mnist = receptive_field_view(create_model("mnist_cnn"), torch.rand(2, 1, 28, 28))
    growth = [b.rf[0] - a.rf[0] for a, b in itertools.pairwise(mnist.layers)]
    assert growth == [1, 4, 2, 8]  # conv +2 at jump 1, pool, conv +2x2 at jump 2, pool, conv +2x4


def test_global_layer_is_refused_with_a_clear_message() -> None:
    r = CliRunner().invoke(app, ["rf", "mnist_cnn_gap", "--layer", "head.pool"])
    assert r.exit_code == 2
    assert "no spatial map" in r.output and "--layer" in r.output


def test_cli_json_equals_summary_json_and_draws_on_an_image(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["rf", DILATED, "--input", "1x64x64", "--json", "--out", str(tmp_path / "rf.png"),
                            "--samples", "3"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    s = json.loads(runner.invoke(app, ["summary", DILATED, "--input", "1x64x64", "--json"]).stdout)
    row = next(x for x in s["layers"] if x["name"] == doc["layer"])
    assert doc["receptive_field"] == [row["receptive_field"]] * 2
    assert doc["effective"]["inside_theoretical"] is True
    assert doc["effective"]["inputs"] == "3 random images"
    image = tmp_path / "digit.png"
    Image.fromarray((torch.rand(40, 40) * 255).byte().numpy()).save(image)
    r = runner.invoke(app, ["rf", "mnist_cnn", str(image), "--out", str(tmp_path / "on.png"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["effective"]["inputs"] == "the image digit.png"
    with Image.open(tmp_path / "on.png") as im:
        assert im.format == "PNG"
