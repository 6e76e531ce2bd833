"""Figures for interpretation: feature-map grids, filter visualisations, CAM overlays, the top-k
channels view and faithfulness curves.

Each function takes the data the :mod:`cnnlab.interpret` functions return and builds a
``matplotlib.figure.Figure`` directly (no pyplot, no global state); save it with
:func:`cnnlab._io.save_figure`. The results are typed by their own classes (imported for types only);
:mod:`cnnlab.report.notebook` registers these figures as what the results show in a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from .grids import finish_grid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..interpret.cam import CamResult, TopChannels
    from ..interpret.feature_maps import FeatureMaps
    from ..interpret.filter_vis import FilterVisResult
    from ..interpret.metrics import FaithfulnessCurves

__all__ = [
    "cam_overlay_figure",
    "channel_across_figure",
    "faithfulness_figure",
    "feature_map_figure",
    "filter_vis_figure",
    "overlays",
    "top_channels_figure",
]


def _grid(n: int, cols: int, cell: float = 1.5, extra_h: float = 0.3) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(cell * cols, (cell + extra_h) * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat


def _show(ax: Any, image: torch.Tensor) -> None:
    """uint8 [C, H, W] (C = 1 or 3) or float [C, H, W] in [0, 1]."""
    arr = image.detach().cpu().float().numpy()
    if image.dtype == torch.uint8:
        arr = arr / 255.0
    if arr.shape[0] == 1:
        ax.imshow(arr[0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(np.ascontiguousarray(arr.transpose(1, 2, 0)).clip(0, 1))


def overlays(images: torch.Tensor, maps: torch.Tensor, *, alpha: float = 0.5) -> torch.Tensor:
    """Heatmaps blended over images (the heatmap is resized to the image).

    Args:
        images: uint8 ``[N, C, H, W]`` (C = 1 or 3).
        maps: ``[N, h, w]`` in [0, 1], e.g. ``CamResult.maps``.
        alpha: Weight of the heatmap in the blend.

    Returns:
        uint8 ``[N, 3, H, W]``.
    """
    from ..images import overlay_heatmap

    return torch.stack([overlay_heatmap(img, m, alpha=alpha) for img, m in zip(images, maps, strict=True)])


def feature_map_figure(fm: FeatureMaps, *, max_channels: int = 64, cols: int = 8,
                       scale: Literal["channel", "layer"] = "channel", title: str = "") -> Figure:
    """All channels of one layer for one image; dead channels are drawn flat and marked.

    Args:
        fm: From :func:`cnnlab.interpret.feature_maps`.
        max_channels: Draw the first this many channels.
        cols: Tiles per row.
        scale: "channel" (each channel stretched to its own range) or "layer" (one scale for the layer,
            so channels compare); see :func:`cnnlab.interpret.feature_maps.normalise_maps`.
        title: Figure title (default: layer, channel count, dead count and the scale).

    Returns:
        The figure; every tile is drawn with ``vmin=0, vmax=1`` from the normalised maps.
    """
    k = min(max_channels, fm.maps.shape[0])
    shown_maps = fm.normalised(scale)[:k].cpu().numpy()
    fig, axes = _grid(k, cols, cell=1.2)
    for c, ax in zip(range(k), axes, strict=False):
        ax.imshow(shown_maps[c], cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        dead = bool(fm.dead[c])
        ax.set_title(f"{c}{' dead' if dead else ''}", fontsize=7, color="red" if dead else "black")
    n_dead = int(fm.dead.sum())
    shown = f" (first {k} of {fm.maps.shape[0]})" if k < fm.maps.shape[0] else ""
    default = (f"{fm.layer}: {fm.maps.shape[0]} channels{shown}, {n_dead} dead for this input, "
               f"scaled per {scale}")
    return finish_grid(fig, title or default, fontsize=11)


def channel_across_figure(images: torch.Tensor, maps: torch.Tensor, *, channel: int, layer: str) -> Figure:
    """One channel for several images: the image above, its activation below (one colour scale for all).

    A channel that is constant (e.g. 0 everywhere: dead) is drawn flat, at the bottom of the scale.

    Args:
        images: The images drawn, uint8 ``[N, C, H, W]``.
        maps: The channel for each image, ``[N, h, w]`` (:func:`cnnlab.interpret.channel_across_images`).
        channel: The channel's index (for the title).
        layer: The layer's name (for the title).

    Returns:
        The figure.
    """
    n = len(images)
    fig, axes = _grid(2 * n, n, cell=1.6)
    vmin, vmax = float(maps.min()), float(maps.max())
    vmax = vmax if vmax > vmin else vmin + 1.0
    for i in range(n):
        _show(axes[i], images[i])
        axes[n + i].imshow(maps[i].cpu().numpy(), cmap="viridis", vmin=vmin, vmax=vmax,
                           interpolation="nearest")
    return finish_grid(fig, f"{layer}, channel {channel}", fontsize=11)


def filter_vis_figure(res: FilterVisResult, *, cols: int = 8) -> Figure:
    """The course's view: each filter's random start image (top row) above its image after N steps.

    Tiles are titled with the filter's mean activation on each image. A faded border (the pixels
    that a "valid"-padding layer barely sees stay near their start value, e.g. 4 of 28 px per side
    for a trained ``mnist_cnn``'s last convolution) would frame every tile: the outer rings whose contrast is
    under 3/4 of the centre's are left out of the tiles, as the course's own ``deprocess_image``
    crops the border, and the title says how many pixels. The figure uses matplotlib's constrained
    layout, so the title never overlaps a tile.

    Args:
        res: From :func:`cnnlab.interpret.visualize_filters`.
        cols: Filters per row (each filter is a column of two tiles).

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    n, steps = len(res.filters), res.history.shape[0]
    cols = max(1, min(cols, n))
    groups = -(-n // cols)
    b = _faded_border(res.images)
    h, w = res.images.shape[-2:]
    fig = Figure(figsize=(1.5 * cols + 0.6, 3.5 * groups + 0.5), layout="constrained")
    axes = fig.subplots(2 * groups, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)  # no drawn frame around the tiles either
    for g in range(groups):
        axes[2 * g, 0].set_ylabel("random start", fontsize=8)
        axes[2 * g + 1, 0].set_ylabel(f"after {steps} steps", fontsize=8)
        for j in range(cols):
            i = g * cols + j
            top, bottom = axes[2 * g, j], axes[2 * g + 1, j]
            if i >= n:
                top.set_visible(False)
                bottom.set_visible(False)
                continue
            _show(top, res.start_images[i, :, b : h - b, b : w - b])
            _show(bottom, res.images[i, :, b : h - b, b : w - b])
            top.set_title(f"#{res.filters[i]}: {float(res.start[i]):.2f}", fontsize=7)
            bottom.set_title(f"{float(res.end[i]):.2f}", fontsize=7)
    crop = f"\nouter {b} px not shown: the layer barely sees them" if b else ""
    fig.suptitle(f"{res.layer}: inputs that maximise each filter\n(mean activation above each tile){crop}",
                 fontsize=9)
    return fig


def _faded_border(images: torch.Tensor, *, ratio: float = 0.75) -> int:
    """Width of the outer band of ``images`` [F, C, H, W] whose contrast is below ``ratio`` x the centre's."""
    h, w = images.shape[-2:]
    dev = (images - images.mean((2, 3), keepdim=True)).abs().mean((0, 1))  # [H, W]
    centre = float(dev[h // 4 : h - h // 4, w // 4 : w - w // 4].mean())
    border = 0
    while border < min(h, w) // 5:
        d = border
        rows, cols = dev[[d, h - 1 - d], d : w - d], dev[d : h - d, [d, w - 1 - d]]
        ring = torch.cat([rows.flatten(), cols.flatten()])
        if float(ring.mean()) >= ratio * centre:
            break
        border += 1
    return border


def cam_overlay_figure(
    images: torch.Tensor,
    result: CamResult,
    *,
    class_names: Sequence[str] | None = None,
    probabilities: torch.Tensor | None = None,
    alpha: float = 0.5,
) -> Figure:
    """One row per image: the image and its CAM overlay, titled with the explained class.

    Args:
        images: The images the CAM was computed for, uint8 ``[N, C, H, W]`` (as the model saw them).
        result: From :func:`cnnlab.interpret.explain`.
        class_names: Names of the classes (default: the class index).
        probabilities: ``[N]`` probability of each explained class, shown beside its name.
        alpha: Weight of the heatmap in the overlay.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    n = len(images)
    fig = Figure(figsize=(4.2, 2.2 * n))
    axes = fig.subplots(n, 2, squeeze=False)
    over = overlays(images, result.maps, alpha=alpha)
    for i in range(n):
        t = int(result.targets[i])
        name = class_names[t] if class_names and t < len(class_names) else str(t)
        p = f" ({float(probabilities[i]):.0%})" if probabilities is not None else ""
        _show(axes[i, 0], images[i])
        _show(axes[i, 1], over[i])
        axes[i, 1].set_title(f"{result.method}: {name}{p}", fontsize=8)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"layer {result.layer}", fontsize=9)
    fig.tight_layout()
    return fig


def _stretch(maps: torch.Tensor) -> torch.Tensor:
    """Each map [h, w] of ``maps`` [k, h, w] min-max stretched to [0, 1] (a constant map becomes 0)."""
    flat = maps.detach().float().flatten(1)
    lo = flat.min(1).values[:, None, None]
    span = (flat.max(1).values - flat.min(1).values)[:, None, None]
    return torch.where(span > 0, (maps - lo) / span.clamp_min(1e-12), torch.zeros_like(maps))


def top_channels_figure(image: torch.Tensor, result: CamResult, top: TopChannels, index: int = 0, *,
                        class_names: Sequence[str] | None = None) -> Figure:
    """The top-k channels view of one image: its CAM overlay, then each top channel overlaid on the image.

    Args:
        image: uint8 [C, H, W], the image drawn.
        result: The CAM of a batch that holds the image.
        top: From :func:`cnnlab.interpret.top_channels`.
        index: The image's position in the batch.
        class_names: Names of the classes (the explained class is named, else shown by its index).

    Returns:
        The figure (constrained layout: no title overlaps a tile); each channel's activation is stretched
        to its own range and upsampled onto the image.
    """
    from matplotlib.figure import Figure

    k = top.indices.shape[1]
    cols = min(k + 1, 5)
    rows = -(-(k + 1) // cols)
    fig = Figure(figsize=(1.9 * cols, 2.1 * rows + 0.3), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).flat
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
    for ax in axes[k + 1 :]:
        ax.set_visible(False)
    _show(axes[0], overlays(image[None], result.maps[index : index + 1])[0])
    t = int(result.targets[index])
    name = class_names[t] if class_names is not None and t < len(class_names) else f"class {t}"
    axes[0].set_title(f"{result.method}: {name}", fontsize=8)
    channel_overlays = overlays(image[None].expand(k, *image.shape), _stretch(top.activations[index]))
    for j in range(k):
        _show(axes[j + 1], channel_overlays[j])
        c, w = int(top.indices[index, j]), float(top.weights[index, j])
        axes[j + 1].set_title(f"channel {c}, w={w:.3g}", fontsize=8)
    fig.suptitle(f"top {k} channels of {result.layer} for {name}", fontsize=9)
    return fig


def faithfulness_figure(curves: Mapping[str, FaithfulnessCurves]) -> Figure:
    """Mean deletion and insertion curves per method, with their mean AUCs in the legend.

    Args:
        curves: ``{method name: curves}`` from :func:`cnnlab.interpret.deletion_insertion`.

    Returns:
        The figure (two panels: deletion, insertion).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4))
    ax_del, ax_ins = fig.subplots(1, 2)
    for name, c in curves.items():
        x = c.fractions.numpy()
        ax_del.plot(x, c.deletion.mean(0).numpy(), label=f"{name} (AUC {float(c.deletion_auc.mean()):.3f})")
        ax_ins.plot(x, c.insertion.mean(0).numpy(), label=f"{name} (AUC {float(c.insertion_auc.mean()):.3f})")
    titles = ("deletion (lower AUC is better)", "insertion (higher AUC is better)")
    for ax, title in zip((ax_del, ax_ins), titles, strict=True):
        ax.set_xlabel("fraction of pixels")
        ax.set_ylabel("target probability")
        ax.set_ylim(0, 1.02)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
