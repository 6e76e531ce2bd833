"""Filter figures: signed responses on a symmetric, robust colour scale; titles that never overlap a tile."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.colors import CenteredNorm, Normalize
from PIL import Image

from cnnlab._io import save_figure
from cnnlab.filters import apply_bank, make_bank
from cnnlab.report.filters_plots import (
    MIN_COLOUR_LIMIT,
    RESPONSE_PERCENTILE,
    kernel_grid_figure,
    response_grid_figure,
)
from cnnlab.report.grids import title_overlaps


def _panels(fig, cols: int) -> np.ndarray:
    return np.array([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]).reshape(-1, cols)


def _photo_with_outlier() -> torch.Tensor:
    """A smooth 48x48 'photo' in [0, 0.3] with one pixel at 40: its Sobel response has one huge outlier."""
    rng = np.random.default_rng(0)
    base = np.cumsum(np.cumsum(rng.normal(size=(48, 48)), 0), 1)
    img = 0.3 * (base - base.min()) / np.ptp(base)
    img[24, 30] = 40.0
    return torch.from_numpy(img)[None, None].float()


def test_signed_responses_use_a_symmetric_percentile_scale():
    img = _photo_with_outlier()
    bank = make_bank("sobel")
    fig = response_grid_figure(img, apply_bank(img, bank), bank.response_names)
    panels = _panels(fig, 4)[0]  # image, sobel x, sobel y, sobel magnitude
    for ax in panels[1:3]:
        im = ax.images[0]
        data = np.asarray(im.get_array())
        norm = im.norm
        assert isinstance(norm, CenteredNorm) and im.get_cmap().name == "RdBu_r"
        assert norm.vcenter == 0.0 and norm.vmin == -norm.vmax
        assert norm.halfrange == pytest.approx(np.percentile(np.abs(data), RESPONSE_PERCENTILE))
        assert norm(norm.halfrange) == pytest.approx(1.0) and norm(-norm.halfrange) == pytest.approx(0.0)
        assert norm(0.0) == pytest.approx(0.5)
        # one outlier does not set the scale: the max is far beyond the limit
        assert np.abs(data).max() > 20 * norm.halfrange
        # the drawn colours are not washed out: many pixels visibly away from the white centre, against
        # next to none with the old limit max |r| (the same colour map, the same threshold)
        old = im.get_cmap()(CenteredNorm(0.0, float(np.abs(data).max()))(data))

        def coloured(rgba: np.ndarray) -> float:
            return float((np.abs(rgba[..., :3] - 1.0).max(axis=-1) > 0.1).mean())

        assert coloured(im.to_rgba(data)) > 0.2 > 20 * coloured(old)
    mag = panels[3].images[0]
    assert type(mag.norm) is Normalize and mag.norm.vmin == 0.0
    assert mag.norm.vmax == pytest.approx(np.percentile(np.asarray(mag.get_array()), RESPONSE_PERCENTILE))


def test_flat_image_zero_mean_haar_is_drawn_neutral_the_unbalanced_form_is_not():
    flat = torch.full((1, 1, 30, 30), 0.6)
    for form, expected in [("zero-mean", 0.5), ("unbalanced", 0.0)]:
        bank = make_bank("haar", form=form)
        fig = response_grid_figure(flat, apply_bank(flat, bank, padding="valid"), bank.response_names)
        three_x = _panels(fig, 6)[0, 3].images[0]
        assert bank.names[2].startswith("three-rect x")
        data = np.asarray(three_x.get_array())
        # zero-mean: float rounding noise only, under the colour floor -> all at the neutral centre (white);
        # unbalanced: -0.6 x 12 everywhere -> the whole panel at the blue end of the scale
        np.testing.assert_allclose(three_x.norm(data), expected, atol=0.01)
        if form == "zero-mean":
            assert three_x.norm.halfrange == MIN_COLOUR_LIMIT


def test_kernel_grid_scale_is_the_exact_kernel_maximum_and_it_caps_the_panels():
    bank = make_bank("log", sigmas=(1.0, 2.0))
    fig = kernel_grid_figure(bank)
    tiles = [ax for ax in fig.axes if ax.images]
    top = np.abs(bank.weight[:, 0].double().numpy()).max()  # one scale for all kernels: they compare
    assert len(tiles) == bank.weight.shape[0]
    for ax in tiles:
        norm = ax.images[0].norm
        assert isinstance(norm, CenteredNorm) and norm.halfrange == pytest.approx(top) and norm.vcenter == 0
    assert len(fig.axes) == len(tiles) + 1 and fig.axes[-1].get_ylabel() == "weight (white = 0)"  # colour bar
    many = make_bank("gabor", thetas=30)  # 90 kernels
    fig = kernel_grid_figure(many, max_kernels=16)
    assert sum(bool(ax.images) for ax in fig.axes) == 16
    assert fig.get_suptitle() == "gabor: 90 kernels, 19x19 (first 16 shown)"


LONG_GABOR = {"frequencies": (0.0625, 0.125), "thetas": [0.3927, 1.1, 2.2], "sigmas": (2.25, 3.5),
              "phases": (0.0, math.pi / 2)}


@pytest.mark.parametrize("cols", [1, 2, 3, 8])
def test_kernel_grid_title_never_overlaps_a_tile(cols: int, tmp_path: Path):
    """Three-line kernel titles in a narrow grid pushed the figure title into the first row (cols 1-3)."""
    bank = make_bank("gabor", **LONG_GABOR)
    fig = kernel_grid_figure(bank, cols=cols, max_kernels=6)
    assert title_overlaps(fig) == []
    renderer = fig.canvas.get_renderer()
    (title,) = fig.texts
    assert title.get_window_extent(renderer).width <= fig.bbox.width  # wrapped to fit a narrow figure
    path = save_figure(tmp_path / "k.png", fig)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100


@pytest.mark.parametrize(("n_images", "max_filters", "shape"), [(1, 1, (28, 28)), (2, 3, (40, 200)),
                                                                 (3, 16, (150, 150)), (1, 24, (200, 40))])
def test_response_grid_title_never_overlaps_a_tile(n_images: int, max_filters: int, shape: tuple[int, int]):
    bank = make_bank("gabor", **LONG_GABOR)
    images = torch.rand(n_images, 1, *shape)
    fig = response_grid_figure(images, apply_bank(images, bank), bank.response_names, max_filters=max_filters,
                               row_labels=["a long row label"] * n_images, title="gabor responses")
    assert title_overlaps(fig) == []


def test_banks_say_which_responses_are_nonnegative():
    assert make_bank("sobel").nonnegative_responses == [False, False, True]  # x, y, magnitude
    assert make_bank("gaussian").nonnegative_responses == [True, True]
    assert make_bank("haar_wavelet").nonnegative_responses == [True, False, False, False]  # LL only
