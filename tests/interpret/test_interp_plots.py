"""Interpretation figures render from the library's results and draw what they say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _interp_models import TinyGapNet, seeded
from PIL import Image

from cnnlab._io import save_figure
from cnnlab.interpret import (
    deletion_insertion,
    explain,
    feature_maps,
    top_channels,
    visualize_filters,
)
from cnnlab.report import interpret_plots as plots
from cnnlab.report.grids import title_overlaps


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_all_figures_render(tmp_path: Path) -> None:
    model = seeded(TinyGapNet(num_classes=3))
    raw = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    x = raw.float() / 255
    res = explain(model, x)
    figs = {
        "cam": plots.cam_overlay_figure(raw, res, class_names=["a", "b", "c"]),
        "top": plots.top_channels_figure(raw[0], res, top_channels(res, k=3), 0),
        "fm": plots.feature_map_figure(feature_maps(model, x[0], "features.0")),
        "fv": plots.filter_vis_figure(
            visualize_filters(model, "features.2", filters=[1, 2], image_size=(3, 16, 16), steps=2)
        ),
        "curves": plots.faithfulness_figure({"gradcam": deletion_insertion(model, x, res.maps, steps=4)}),
        "across": plots.channel_across_figure(raw, res.activations[:, 0], channel=0, layer=res.layer),
    }
    for name, fig in figs.items():
        path = save_figure(tmp_path / f"{name}.png", fig)
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] > 50
    names = ["a", "b", "c"]
    assert [t.split(": ")[1] for t in _titles(figs["cam"])] == [names[int(t)] for t in res.targets]
    assert len(_titles(figs["fm"])) == 8  # one panel per channel
    assert _titles(figs["fv"])[0].startswith("#1")
    assert "AUC" in figs["curves"].axes[0].get_legend().get_texts()[0].get_text()


def test_overlay_blends_the_heatmap_colour() -> None:
    raw = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    heat = torch.zeros(1, 8, 8)
    heat[0, :4] = 1.0
    out = plots.overlays(raw, heat, alpha=1.0)[0].numpy()
    # jet(1) is dark red: the hot half is red; the colour's weight follows the map: the cold half
    # (map 0) is the black image, not jet(0)'s dark blue over the background.
    assert out[0, :4].mean() > 100 and out[2, :4].mean() < 10
    assert out[:, 4:].max() == 0
    assert np.array_equal(out.shape, (3, 8, 8))


def _model_with_a_varying_dead_channel() -> TinyGapNet:
    """Channel 1 of the first conv: varying values, all far below 0 -> dead; the old figure stretched it."""
    model = seeded(TinyGapNet(in_chans=1, width=4))
    with torch.no_grad():
        model.features[0].bias[1] = -100.0
    return model


def _tile_pixels(png: Path, fig, ax) -> np.ndarray:
    """The RGB pixels of one tile's image area in a PNG saved at the figure's dpi (no tight bbox)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    box = ax.get_window_extent()
    height = fig.bbox.height
    with Image.open(png) as im:
        arr = np.asarray(im.convert("RGB"))
    top, bottom = int(height - box.y1) + 3, int(height - box.y0) - 3  # inside the frame
    return arr[top:bottom, int(box.x0) + 3: int(box.x1) - 3]


def test_dead_channel_is_drawn_flat_and_live_channels_are_not(tmp_path: Path) -> None:
    model = _model_with_a_varying_dead_channel()
    fm = feature_maps(model, torch.rand(1, 12, 12), "features.0")  # raw conv: channel 1 varies below 0
    assert fm.dead.tolist()[1] and float(fm.maps[1].std()) > 0
    fig = plots.feature_map_figure(fm)
    path = tmp_path / "fm.png"
    fig.savefig(path, dpi=fig.dpi)
    live, dead = fig.axes[fm.dead.tolist().index(False)], fig.axes[1]
    assert dead.get_title() == "1 dead"
    assert np.ptp(np.asarray(dead.images[0].get_array())) == 0  # the drawn data is flat ...
    assert dead.images[0].norm.vmin == 0.0 and dead.images[0].norm.vmax == 1.0  # ... on a fixed scale
    dead_px, live_px = _tile_pixels(path, fig, dead), _tile_pixels(path, fig, live)
    assert dead_px.size and (dead_px == dead_px[0, 0]).all()  # one colour in the PNG
    assert len(np.unique(live_px.reshape(-1, 3), axis=0)) > 10


def test_feature_map_figure_layer_scale_keeps_channels_comparable() -> None:
    model = seeded(TinyGapNet(in_chans=1, width=4))
    fm = feature_maps(model, torch.rand(1, 12, 12))  # default: the first ReLU
    fig = plots.feature_map_figure(fm, scale="layer")
    drawn = np.stack([np.asarray(ax.images[0].get_array()) for ax in fig.axes[:4]])
    ref = (fm.maps - fm.maps.min()) / (fm.maps.max() - fm.maps.min())
    np.testing.assert_allclose(drawn, ref.numpy(), atol=1e-6)
    title = " ".join(fig.get_suptitle().split())  # wrapped to the figure width
    assert title == "features.1: 4 channels, 1 dead for this input, scaled per layer"
    assert drawn.max() == pytest.approx(1.0) and sum(d.max() == pytest.approx(1.0) for d in drawn) == 1


@pytest.mark.parametrize("n", [1, 2, 4, 16])
def test_feature_map_and_channel_figures_titles_never_overlap_a_tile(n: int) -> None:
    model = seeded(TinyGapNet(in_chans=1, width=n))
    x = torch.rand(max(1, n // 4), 1, 12, 12)
    fig = plots.feature_map_figure(feature_maps(model, x[0], "features.0"), cols=8)
    assert title_overlaps(fig) == []
    raw = (x * 255).to(torch.uint8)
    across = plots.channel_across_figure(raw, torch.zeros(len(x), 12, 12), channel=0, layer="features.1")
    assert title_overlaps(across) == []
    tile = across.axes[len(x)].images[0]
    assert np.ptp(np.asarray(tile.get_array())) == 0 and tile.norm.vmax > tile.norm.vmin  # dead: flat
