"""Figures of series: a class activation map along time as colour under the curve.

:func:`series_cam_figure` draws each series (its first channel as the curve, the others as thin grey
lines) with the area under the curve coloured by the map (``jet``: red where the class was found), one
panel per series, titled with the true, explained and predicted class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..data import ImageTensorDataset
    from ..interpret.series_cam import SeriesCams

__all__ = ["series_cam_figure", "series_samples_figure"]


def series_cam_figure(cams: SeriesCams, *, columns: int = 3) -> Figure:
    """One panel per series: the curve, the map as colour under it, a colour bar.

    Args:
        cams: The maps and series (:func:`cnnlab.interpret.series_cam.explain_series`).
        columns: Panels per row.

    Returns:
        The figure ("random weights" in its title when the model's weights are).
    """
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    n = len(cams.names)
    cols = max(1, min(columns, n))
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4.2 * cols, 2.6 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    cmap = plt.get_cmap("jet")
    image = None
    for i, ax in enumerate(axes):
        if i >= n:
            ax.axis("off")
            continue
        x = cams.series[i].numpy()
        cam = cams.maps[i].numpy()
        t = np.arange(x.shape[-1])
        for extra in x[1:]:
            ax.plot(t, extra, color="0.6", lw=0.6)
        y = x[0]
        lo, hi = float(x.min()), float(x.max())
        pad = 0.05 * (hi - lo or 1.0)
        floor = lo - pad
        area = ax.fill_between(t, y, floor, color="none")
        image = ax.imshow(cam[None, :], cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="bilinear",
                          extent=(-0.5, len(t) - 0.5, floor, hi + pad), origin="lower")
        image.set_clip_path(area.get_paths()[0], transform=ax.transData)
        ax.plot(t, y, color="black", lw=1.2)
        ax.set_xlim(0, len(t) - 1)
        ax.set_ylim(floor, hi + pad)
        label = cams.labels[i]
        truth = f"true {cams.classes[label]}, " if label is not None else ""
        ax.set_title(f"{cams.names[i]}\n{truth}{cams.classes[cams.targets[i]]} "
                     f"{cams.probabilities[i]:.0%} (predicted {cams.classes[cams.predicted[i]]})", fontsize=8)
        ax.set_xlabel("sample", fontsize=7)
        ax.tick_params(labelsize=6)
    if image is not None:
        fig.colorbar(image, ax=list(axes[:n]), shrink=0.8, label=f"{cams.method} (0-1)")
    random = " (random weights)" if cams.weights == "random" else ""
    fig.suptitle(f"{cams.method} along time, layer {cams.layer}{random}", fontsize=10)
    return fig


def series_samples_figure(dataset: ImageTensorDataset, *, per_class: int = 4, augment: str | None = None,
                          seed: int = 0, title: str = "") -> Figure:
    """One panel per class: its first ``per_class`` series (first channel); with ``augment``, the first
    series and three augmented copies of it (:class:`cnnlab.data.series_augment.SeriesAugment`, seeded).

    Args:
        dataset: A split of series ``[N, C, L]``.
        per_class: Series drawn per class.
        augment: A series augmentation preset (``series``), or None.
        seed: Seed of the augmentation draws.
        title: The figure's title.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    from ..data.series_augment import SeriesAugment

    classes = dataset.classes
    cols = min(4, len(classes))
    rows = (len(classes) + cols - 1) // cols
    fig = Figure(figsize=(3.6 * cols, 2.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    aug = SeriesAugment(augment, seed=seed) if augment is not None else None
    for c, ax in enumerate(axes):
        if c >= len(classes):
            ax.axis("off")
            continue
        index = (dataset.labels == c).nonzero().flatten()[:per_class]
        if aug is None:
            for i in index.tolist():
                ax.plot(dataset.images[i, 0].numpy(), lw=0.9)
        elif len(index):
            first = dataset.images[index[:1]].float()
            ax.plot(first[0, 0].numpy(), color="black", lw=1.4, label="original")
            for _ in range(3):
                ax.plot(aug(first)[0, 0].numpy(), lw=0.8, alpha=0.8)
        ax.set_title(f"class {classes[c]}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(title + (f" (augment={augment}: the first series, black, and 3 draws)" if augment else ""),
                 fontsize=9)
    return fig
