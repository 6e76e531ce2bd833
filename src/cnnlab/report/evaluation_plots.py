"""Evaluation figures beyond the confusion matrix: the gallery of the highest-loss images.

Built with ``matplotlib.figure.Figure`` directly (no pyplot); save with :func:`cnnlab._io.save_figure`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .grids import finish_grid
from .interpret_plots import overlays

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..interpret.top_losses import TopLossGallery

__all__ = ["top_losses_figure"]


def _draw(ax: Any, image: torch.Tensor) -> None:
    arr = image.detach().cpu().numpy()
    if arr.shape[0] == 1:
        ax.imshow(arr[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(arr.transpose(1, 2, 0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def top_losses_figure(gallery: TopLossGallery, *, cols: int | None = None, title: str = "") -> Figure:
    """The highest-loss images, each with its true and predicted class, their probabilities and its CAM.

    Args:
        gallery: From :func:`cnnlab.interpret.top_losses.top_loss_gallery`.
        cols: Images per row (each image takes two panels when a CAM is drawn beside it); default 5, or
            3 with CAMs: at most 6 panels a row, a grid that stays readable rather than a 20-panel strip.
        title: Figure title (default: says what is shown).

    Returns:
        The figure: per image, the image titled ``true: CLASS p`` / ``pred: CLASS p`` / loss and where
        it comes from, and beside it the CAM of the predicted class over the image.
    """
    from matplotlib.figure import Figure

    n = len(gallery.images)
    per = 2 if gallery.cams is not None else 1
    cols = max(1, min(cols if cols is not None else (5 if per == 1 else 3), n))
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(1.7 * per * cols + 0.4, 2.35 * rows))
    axes = fig.subplots(rows, cols * per, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    over = overlays(gallery.images, gallery.cams) if gallery.cams is not None else None
    for i in range(n):
        r, c = divmod(i, cols)
        ax = axes[r, c * per]
        ax.axis("on")
        _draw(ax, gallery.images[i])
        ax.set_title(f"true: {gallery.labels[i]} {gallery.p_label[i]:.0%}\n"
                     f"pred: {gallery.predicted[i]} {gallery.p_predicted[i]:.0%}\n"
                     f"loss {gallery.losses[i]:.2f}, {gallery.where[i].rsplit('/', 1)[-1]}", fontsize=7,
                     color="tab:red" if gallery.labels[i] != gallery.predicted[i] else "black")
        if over is not None:
            cam_ax = axes[r, c * per + 1]
            cam_ax.axis("on")
            _draw(cam_ax, over[i])
            cam_ax.set_title(f"looked at for\n{gallery.predicted[i]}", fontsize=7)
    cam = gallery.cam_layer if gallery.cams is not None else gallery.cam_note
    default = f"the {n} highest-loss validation images ({cam})" if cam else f"the {n} highest-loss images"
    return finish_grid(fig, title or default, fontsize=10)
