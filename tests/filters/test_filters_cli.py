"""`cnnlab filters` through Typer's CliRunner, and the figures it draws."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cnnlab.cli import app
from cnnlab.filters import apply_bank, list_banks, make_bank
from cnnlab.report.filters_plots import kernel_grid_figure, response_grid_figure

runner = CliRunner()


def _png(path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_filters_cli_on_sample_writes_both_pngs(tmp_path):
    out = tmp_path / "figs" / "gabor.png"
    result = runner.invoke(app, ["filters", "--out", str(out), "--frequencies", "0.2,0.3", "--thetas", "3",
                                 "--phases", "0,90", "--max-images", "2", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["bank"] == "gabor" and len(info["filters"]) == 2 * 3 * 2
    first = info["filters"][1]["params"]  # nesting order: frequency, theta, sigma, phase
    assert first["frequency"] == 0.2 and first["theta"] == 0.0
    assert first["phase"] == pytest.approx(math.pi / 2)
    assert len(info["images"]) == 2 and info["images"][0]["shape"] == [1, 28, 28]
    assert len(info["mean_abs_response"]) == 2 and len(info["mean_abs_response"][0]) == 12
    assert info["figures"] == {"kernels": str(tmp_path / "figs" / "gabor_kernels.png"), "responses": str(out)}
    w, h = _png(out)
    assert w > h > 100
    _png(info["figures"]["kernels"])


def test_filters_cli_on_image_files_and_every_bank_name_is_accepted(tmp_path):
    img = tmp_path / "stripes.png"
    arr = np.zeros((20, 24), dtype=np.uint8)
    arr[:, ::4] = 255
    Image.fromarray(arr).convert("RGB").save(img)  # read as grey ("L")
    for bank in list_banks():
        out = tmp_path / f"{bank}.png"
        result = runner.invoke(app, ["filters", str(img), "--bank", bank, "--out", str(out)])
        assert result.exit_code == 0, (bank, result.output)
        assert f"response grid: {out}" in result.stdout
        _png(out)
        _png(tmp_path / f"{bank}_kernels.png")
    result = runner.invoke(app, ["filters", str(img), "--bank", "log", "--param", "sigmas=1,3", "--json",
                                 "--out", str(tmp_path / "log.png")])
    assert [f["params"]["sigma"] for f in json.loads(result.stdout)["filters"]] == [1.0, 3.0]


@pytest.mark.parametrize("args,needle", [
    (["--bank", "sobel", "--thetas", "4"], "--thetas only apply to --bank gabor"),
    (["--frequencies", "a,b"], "--frequencies a,b: expected comma-separated numbers"),
    (["--param", "nope"], "--param nope: expected KEY=VALUE"),
    (["--bank", "log", "--param", "radius=2"], "unknown parameter(s) radius"),
    (["--out", "x.txt"], "--out x.txt: give an image file name"),
])
def test_filters_cli_user_errors_are_one_line_exit_2(tmp_path, args, needle):
    result = runner.invoke(app, ["filters", *args])
    assert result.exit_code == 2
    assert needle in result.output and "Traceback" not in result.output


def test_filters_cli_missing_image_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["filters", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and "missing.png" in result.output


def test_filters_cli_unknown_bank_lists_the_registry():
    result = runner.invoke(app, ["filters", "--bank", "gabr"])
    assert result.exit_code == 2
    assert all(name in result.output for name in list_banks())


def test_filters_figures_titles_carry_parameters():
    bank = make_bank("sobel")
    fig = kernel_grid_figure(bank)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["sobel x", "sobel y"]
    images = torch.rand(3, 1, 12, 12)
    resp = apply_bank(images, bank)
    fig = response_grid_figure(images, resp, bank.response_names, row_labels=["a", "b", "c"])
    grid = np.array(fig.axes[:12]).reshape(3, 4)
    assert [ax.get_title() for ax in grid[0, 1:]] == ["sobel x", "sobel y", "sobel\nmagnitude"]
    bars = [ax.get_ylabel() for ax in fig.axes[12:]]  # signed x/y, and the magnitude from 0
    assert bars == ["signed response / L", "magnitude / L"] and "99th percentile" in fig.get_suptitle()
    assert [ax.get_ylabel() for ax in grid[:, 0]] == ["a", "b", "c"]
