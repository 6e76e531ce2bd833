"""Image grids: sample images per class, and the same images augmented several times; and
:func:`finish_grid`, the layout step every grid of tiles ends with (the figure title never overlaps a tile).

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot, no global state); save them
with :func:`cnnlab._io.save_figure`, or use :func:`save_sample_grid`.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..data.core import DataBundle, ImageTensorDataset
    from ..data.transforms import AugmentPreset


def pick_per_class(labels: torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    """Up to ``n`` indices taken round-robin over classes (first samples of each class), deterministic."""
    per_class = [torch.nonzero(labels == c).flatten().tolist() for c in range(num_classes)]
    picked: list[int] = []
    depth = 0
    while len(picked) < n and any(depth < len(p) for p in per_class):
        picked += [p[depth] for p in per_class if depth < len(p)][: n - len(picked)]
        depth += 1
    return torch.tensor(picked, dtype=torch.int64)


def finish_grid(fig: Figure, title: str, *, fontsize: float = 10) -> Figure:
    """Give a grid of tiles its title and lay it out so that no title overlaps a tile.

    The title is wrapped to the figure's width (a grid of one or two tiles is narrower than its title), and
    the figure uses matplotlib's constrained layout, which reserves room for the figure title and for every
    tile's own (possibly multi-line) title. Call it once, instead of ``suptitle`` + ``tight_layout``.

    Args:
        fig: The figure, with its tiles drawn.
        title: The figure title ("" for none).
        fontsize: Title font size in points.

    Returns:
        ``fig``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_layout_engine("constrained")
    if title:
        text = fig.suptitle(title, fontsize=fontsize)
        renderer = FigureCanvasAgg(fig).get_renderer()
        width, room = text.get_window_extent(renderer).width, 0.95 * fig.bbox.width
        if width > room:
            text.set_text("\n".join(textwrap.wrap(title, max(8, int(len(title) * room / width)))))
    return fig


def title_overlaps(fig: Figure) -> list[int]:
    """Indices (in ``fig.axes``) of the visible tiles that the figure title overlaps, once drawn.

    A tile counts with its own title and labels (matplotlib's tight bounding box). An empty list means the
    layout is clean; it is what the figure tests assert for every grid :func:`finish_grid` lays out.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    title = fig.get_suptitle()
    if not title:
        return []
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    (text,) = [t for t in fig.texts if t.get_text() == title]  # suptitle() adds one Text to fig.texts
    box = text.get_window_extent(renderer)
    shown = [(i, ax) for i, ax in enumerate(fig.axes) if ax.get_visible() and ax.axison]
    tiles = [(i, ax.get_tightbbox(renderer)) for i, ax in shown]
    return [i for i, tile in tiles if tile is not None and box.overlaps(tile)]


def _show(ax: object, image: torch.Tensor) -> None:
    arr = image.detach().cpu().numpy()
    if arr.shape[0] == 1:
        ax.imshow(arr[0], cmap="gray", vmin=0, vmax=255)  # type: ignore[attr-defined]
    else:
        ax.imshow(np.ascontiguousarray(arr.transpose(1, 2, 0)))  # type: ignore[attr-defined]
    ax.set_xticks([])  # type: ignore[attr-defined]
    ax.set_yticks([])  # type: ignore[attr-defined]


def sample_grid_figure(dataset: ImageTensorDataset, *, n: int = 32, cols: int = 8, title: str = "") -> Figure:
    """A grid of ``n`` images (balanced over classes), each titled with its class name.

    Args:
        dataset: The images (e.g. ``bundle.train``); the first ones of each class are taken in turn.
        n: Number of images.
        cols: Tiles per row.
        title: Figure title ("" for none).

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    idx = pick_per_class(dataset.labels, n, len(dataset.classes))
    images, labels = dataset.get_batch(idx)
    cols = max(1, min(cols, len(idx)))
    rows = max(1, -(-len(idx) // cols))
    fig = Figure(figsize=(1.6 * cols, 1.8 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k < len(idx):
            _show(ax, images[k])
            ax.set_title(dataset.classes[int(labels[k])], fontsize=8)
        else:
            ax.axis("off")
    return finish_grid(fig, title, fontsize=12)


def augment_grid_figure(
    dataset: ImageTensorDataset, augment: str | AugmentPreset, *, n: int = 6, copies: int = 6, seed: int = 0,
    title: str = "",
) -> Figure:
    """One row per image: the original, then ``copies`` augmented versions (per-sample random draws).

    Args:
        dataset: The images (e.g. ``bundle.train``); ``n`` of them, balanced over classes.
        augment: An augmentation preset name ("light", "standard", "strong") or an ``AugmentPreset``.
        n: Number of images (rows).
        copies: Augmented versions per image (columns after the original).
        seed: Seed of the augmentation draws.
        title: Figure title ("" for none).

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    from ..data.transforms import BatchAugment

    idx = pick_per_class(dataset.labels, n, len(dataset.classes))
    images, labels = dataset.get_batch(idx)
    aug = BatchAugment(augment, seed=seed)
    versions = [images] + [aug(images) for _ in range(copies)]
    fig = Figure(figsize=(1.5 * (copies + 1), 1.6 * len(idx)))
    axes = fig.subplots(len(idx), copies + 1, squeeze=False)
    for r in range(len(idx)):
        for c in range(copies + 1):
            _show(axes[r, c], versions[c][r])
        axes[r, 0].set_ylabel(dataset.classes[int(labels[r])], fontsize=8)
    axes[0, 0].set_title("original", fontsize=8)
    for c in range(1, copies + 1):
        axes[0, c].set_title(f"augmented {c}", fontsize=8)
    return finish_grid(fig, title, fontsize=12)


def save_sample_grid(
    bundle: DataBundle, out_path: str | os.PathLike[str], *, augment: str | None = None, n: int = 32,
    seed: int = 0,
) -> Path:
    """Write a PNG grid of training images; with ``augment``, the same images augmented several times.

    Args:
        bundle: Loaded data (the training split is shown).
        out_path: Destination PNG (written atomically).
        augment: An augmentation preset name, or None for the plain sample grid.
        n: Number of images (plain grid) — the augmented grid shows ``min(n, 8)`` rows.
        seed: Seed of the augmentation draws.

    Returns:
        ``out_path`` as a Path.
    """
    from .._io import save_figure

    name = bundle.spec if len(bundle.spec) < 40 else Path(bundle.spec).name
    if bundle.is_series:  # curves, not images (cnnlab.report.series_plots)
        from .series_plots import series_samples_figure

        return save_figure(out_path, series_samples_figure(bundle.train, augment=augment, seed=seed,
                                                           title=f"{name}: training series"))
    if augment is None:
        fig = sample_grid_figure(bundle.train, n=n, title=f"{name}: training samples")
    else:
        fig = augment_grid_figure(bundle.train, augment, n=min(n, 8), seed=seed,
                                  title=f"{name}: augment={augment}")
    return save_figure(out_path, fig)
