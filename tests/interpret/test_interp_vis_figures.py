"""The filter-visualisation and top-channels figures: what they draw, no frame, no title over a tile."""

from __future__ import annotations

from pathlib import Path

import torch
from _interp_models import TinyGapNet, seeded
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image
from torch import nn

from cnnlab._io import save_figure
from cnnlab.interpret import explain, top_channels, visualize_filters
from cnnlab.interpret.filter_vis import FilterVisResult
from cnnlab.report import interpret_plots as plots


def _valid_padding_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(16, 16, 3)).eval()


def _titles_clear_of_tiles(fig) -> int:
    """Asserts that every title (the figure's, each tile's) lies inside the figure and off every tile.

    Returns how many titles were checked.
    """
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    tiles = [ax for ax in fig.axes if ax.get_visible()]
    texts = [ax.title for ax in tiles if ax.get_title()] + [fig._suptitle]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, text.get_text()
        for ax in tiles:
            assert not box.overlaps(ax.get_window_extent(renderer)), (text.get_text(), ax.get_title())
    return len(texts)


def _ring_contrast(images: torch.Tensor, d: int) -> tuple[float, float]:
    """Mean |pixel - image mean| on the ring d pixels in from the border, and in the central half."""
    h, w = images.shape[-2:]
    dev = (images - images.mean((-2, -1), keepdim=True)).abs().reshape(-1, h, w).mean(0)
    ring = torch.cat([dev[[d, h - 1 - d], d : w - d].flatten(), dev[d : h - d, [d, w - 1 - d]].flatten()])
    return float(ring.mean()), float(dev[h // 4 : h - h // 4, w // 4 : w - w // 4].mean())


def test_filter_vis_figure_final_images_titled_start_to_end(tmp_path: Path) -> None:
    model = seeded(TinyGapNet())
    res = visualize_filters(model, "features.2", filters=[1, 2, 5], image_size=(3, 24, 24), steps=3)
    fig = plots.filter_vis_figure(res, cols=2)
    rows = fig.axes[0].get_gridspec().nrows
    assert rows == 2  # 3 filters in 2 columns; no row of (identical, grey) random start images
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    assert len(shown) == 3
    b = plots._faded_border(res.images)
    h = res.images.shape[-1]
    expect = res.images[0, :, b : h - b, b : h - b].permute(1, 2, 0).numpy()
    assert (fig.axes[0].images[0].get_array() == expect).all()
    assert fig.axes[0].get_title().startswith(f"#1: {float(res.start[0]):.2f}→{float(res.end[0]):.2f}")
    for ax, rose in zip(shown, res.rose, strict=True):
        assert ("did not rise" in ax.get_title()) is (not rose)
    assert _titles_clear_of_tiles(fig) == 4
    path = save_figure(tmp_path / "fv.png", fig)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 200


def test_filter_vis_figure_flags_filters_that_did_not_rise() -> None:
    res = FilterVisResult("conv", [0, 1], torch.rand(2, 3, 8, 8), torch.zeros(2, 2), torch.tensor([0.5, 0.0]),
                          torch.tensor([0.2, 0.0]), torch.rand(2, 3, 8, 8))
    fig = plots.filter_vis_figure(res)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert all("did not rise" in t for t in titles)  # fell (0.5 -> 0.2) and stayed at 0
    assert "2 of 2 filters did not rise" in fig._suptitle.get_text()
    assert res.rose == [False, False]


def test_filter_vis_figure_leaves_out_the_faded_border() -> None:
    """A valid-padding net barely sees its border pixels: they stay grey, a frame around every tile."""
    model = _valid_padding_net()
    res = visualize_filters(model, "6", filters=range(6), image_size=(1, 28, 28), steps=40, lr=0.2)
    edge, centre = _ring_contrast(res.images, 0)
    assert edge < 0.75 * centre  # the frame is really there in the optimised images
    fig = plots.filter_vis_figure(res, cols=6)
    finals = torch.stack([torch.as_tensor(ax.images[0].get_array()) for ax in fig.axes[0:6]])
    b = plots._faded_border(res.images)
    assert 0 < b <= 28 // 5 and finals.shape == (6, 28 - 2 * b, 28 - 2 * b)
    edge, centre = _ring_contrast(finals, 0)
    assert edge >= 0.75 * centre  # no frame in the tiles
    assert f"outer {b} px not shown" in fig._suptitle.get_text()


def test_faded_border_is_zero_without_a_frame() -> None:
    texture = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert plots._faded_border(texture) == 0
    framed = texture.clone()
    framed[..., :3, :] = framed[..., -3:, :] = 0.5
    framed[..., :, :3] = framed[..., :, -3:] = 0.5
    assert plots._faded_border(framed) == 3
    zeros = torch.zeros(4)
    res = FilterVisResult("x", [0, 1, 2, 3], texture, zeros[None], zeros, zeros + 1, start_images=texture)
    assert "not shown" not in plots.filter_vis_figure(res)._suptitle.get_text()


def test_top_channels_figure_titles_clear_of_tiles() -> None:
    model = seeded(TinyGapNet(num_classes=3))
    raw = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    res = explain(model, raw.float() / 255)
    top = top_channels(res, k=6)
    fig = plots.top_channels_figure(raw[0], res, top, 0)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 7
    assert [ax.get_title() for ax in fig.axes[1:7]] == [
        f"channel {int(c)}, w={float(w):.3g}" for c, w in zip(top.indices[0], top.weights[0], strict=True)
    ]
    assert _titles_clear_of_tiles(fig) == 8
