"""Interpretation figures render from the library's results and draw what they say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
    # jet(1) is dark red, jet(0) dark blue: the hot half is red, the cold half blue.
    assert out[0, :4].mean() > 100 and out[2, :4].mean() < 10
    assert out[2, 4:].mean() > 100 and out[0, 4:].mean() < 10
    assert np.array_equal(out.shape, (3, 8, 8))
