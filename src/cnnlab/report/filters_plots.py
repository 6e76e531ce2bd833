"""Filter-bank figures: the kernels themselves, and what each one finds in a few images.

Functions return matplotlib ``Figure`` objects (built without pyplot, so no global state); save them with
:func:`cnnlab._io.save_figure`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..filters import FilterBank

#: Signed responses and kernels: diverging map centred on zero (red positive, blue negative).
SIGNED_CMAP = "RdBu_r"


def _title(text: str, width: int = 14) -> str:
    """Wrap a filter name (its parameters) on spaces so titles stay within a small panel."""
    return "\n".join(textwrap.wrap(text, width=width)) or text


def _off(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _signed(ax: Any, arr: np.ndarray) -> Any:
    lim = float(np.abs(arr).max()) or 1.0
    return ax.imshow(arr, cmap=SIGNED_CMAP, vmin=-lim, vmax=lim, interpolation="nearest")


def kernel_grid_figure(bank: FilterBank, *, cols: int = 8, title: str = "") -> Figure:
    """Every kernel of ``bank`` as a small image, titled with its parameters.

    Kernels are drawn with a diverging colour map centred on zero; multi-channel kernels show their
    channel mean.

    Args:
        bank: The bank to draw.
        cols: Panels per row.
        title: Figure title (default: the bank name, kernel count and size).

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    kernels = bank.weight.detach().to(torch.float64).mean(dim=1).cpu().numpy()
    n = len(kernels)
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    fig = Figure(figsize=(1.5 * cols, 1.75 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k < n:
            _signed(ax, kernels[k])
            ax.set_title(_title(bank.names[k]), fontsize=7)
            _off(ax)
        else:
            ax.axis("off")
    kh, kw = bank.kernel_size
    stride = f", stride {bank.stride}" if bank.stride != 1 else ""
    fig.suptitle(title or f"{bank.name}: {n} kernels, {kh}x{kw}{stride}", fontsize=10)
    fig.tight_layout()
    return fig


def _image_panel(image: torch.Tensor) -> tuple[np.ndarray, dict[str, Any]]:
    """An image [C,H,W] (uint8 or float) as an array plus imshow options."""
    arr = image.detach().cpu().to(torch.float64).numpy()
    if image.dtype == torch.uint8:
        arr = arr / 255.0
    if arr.shape[0] == 1:
        return arr[0], {"cmap": "gray", "vmin": 0.0, "vmax": max(1.0, float(arr.max()))}
    return np.clip(arr.transpose(1, 2, 0), 0.0, 1.0), {}


def response_grid_figure(
    images: Sequence[torch.Tensor] | torch.Tensor,
    responses: Sequence[torch.Tensor] | torch.Tensor,
    names: Sequence[str],
    *,
    max_filters: int = 16,
    row_labels: Sequence[str] | None = None,
    nonnegative: Sequence[bool] | None = None,
    title: str = "",
) -> Figure:
    """A grid of images x filters: each row one image, then its response to every filter.

    Args:
        images: The input images, ``[N, C, H, W]`` or a list of ``[C, H, W]`` (sizes may differ).
        responses: Per image ``[out, H', W']`` (a list, or one ``[N, out, H', W']`` tensor), in the order
            of ``names`` (e.g. ``bank.response_names`` from :func:`cnnlab.filters.apply_bank`).
        names: One title per response (the filter parameters).
        max_filters: At most this many response columns (the first ones).
        row_labels: One label per image (e.g. its class or file name).
        nonnegative: Per response, True to draw it with a sequential map from 0 (e.g. a gradient
            magnitude); default: responses with no negative values in any image.
        title: Figure title.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    n_img = len(images)
    n_resp = min(len(names), max_filters)
    if nonnegative is None:
        nonnegative = [all(bool((r[j] >= 0).all()) for r in responses) for j in range(n_resp)]
    cols = n_resp + 1
    fig = Figure(figsize=(1.45 * cols, 1.55 * n_img + 0.7))
    axes = fig.subplots(n_img, cols, squeeze=False)
    for i in range(n_img):
        arr, opts = _image_panel(images[i])
        axes[i, 0].imshow(arr, interpolation="nearest", **opts)
        _off(axes[i, 0])
        if row_labels is not None:
            axes[i, 0].set_ylabel(_title(str(row_labels[i]), 16), fontsize=7)
        resp = responses[i].detach().cpu().to(torch.float64).numpy()
        for j in range(n_resp):
            ax = axes[i, j + 1]
            if nonnegative[j]:
                ax.imshow(resp[j], cmap="magma", vmin=0.0, vmax=float(resp[j].max()) or 1.0,
                          interpolation="nearest")
            else:
                _signed(ax, resp[j])
            _off(ax)
    axes[0, 0].set_title("image", fontsize=7)
    for j in range(n_resp):
        axes[0, j + 1].set_title(_title(names[j]), fontsize=7)
    shown = f" (first {n_resp} of {len(names)})" if n_resp < len(names) else ""
    fig.suptitle((title or "filter responses") + shown, fontsize=10)
    fig.tight_layout()
    return fig
