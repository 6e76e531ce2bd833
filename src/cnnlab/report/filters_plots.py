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

from .grids import finish_grid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..filters import FilterBank

#: Signed responses and kernels: diverging map centred on zero (red positive, blue negative).
SIGNED_CMAP = "RdBu_r"
#: Non-negative responses (e.g. a gradient magnitude): a sequential map from 0.
NONNEGATIVE_CMAP = "magma"
#: The colour limit of a response is this percentile of its |values| (robust: a few outliers saturate
#: instead of washing out the rest); kernels use their exact maximum.
RESPONSE_PERCENTILE = 99.0
#: Colour limits never go below this: a response smaller than it everywhere is float rounding noise of a
#: zero response (a zero-mean kernel on a flat image) and is drawn neutral, not stretched to full contrast.
MIN_COLOUR_LIMIT = 1e-6


def _title(text: str, width: int = 14) -> str:
    """Wrap a filter name (its parameters) on spaces so titles stay within a small panel."""
    return "\n".join(textwrap.wrap(text, width=width)) or text


def _off(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def colour_limit(arr: np.ndarray, percentile: float = RESPONSE_PERCENTILE) -> float:
    """A colour limit: the ``percentile`` of ``|arr|``, at least :data:`MIN_COLOUR_LIMIT`."""
    return max(float(np.percentile(np.abs(arr), percentile)), MIN_COLOUR_LIMIT)


def _draw(ax: Any, arr: np.ndarray, *, signed: bool, percentile: float) -> Any:
    """imshow ``arr``: signed with a CenteredNorm (symmetric about 0), else a Normalize from 0."""
    from matplotlib.colors import CenteredNorm, Normalize

    lim = colour_limit(arr, percentile)
    if signed:
        return ax.imshow(arr, cmap=SIGNED_CMAP, norm=CenteredNorm(vcenter=0.0, halfrange=lim),
                         interpolation="nearest")
    return ax.imshow(arr, cmap=NONNEGATIVE_CMAP, norm=Normalize(0.0, lim), interpolation="nearest")


def kernel_grid_figure(bank: FilterBank, *, cols: int = 8, max_kernels: int = 64, title: str = "") -> Figure:
    """The kernels of ``bank`` as small images, titled with their parameters.

    Kernels are drawn with one diverging colour map centred on zero for all of them (limit: the largest
    |weight| drawn), with its colour bar, so that kernels compare; multi-channel kernels show their
    channel mean.

    Args:
        bank: The bank to draw.
        cols: Panels per row.
        max_kernels: Draw at most this many (the first ones); the title says how many were left out.
        title: Figure title (default: the bank name, kernel count and size).

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    n_all = bank.out_channels
    n = min(n_all, max_kernels)
    kernels = bank.weight[:n].detach().to(torch.float64).mean(dim=1).cpu().numpy()
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    fig = Figure(figsize=(1.5 * cols + 1.0, 1.75 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    from matplotlib.colors import CenteredNorm

    norm = CenteredNorm(vcenter=0.0, halfrange=colour_limit(kernels, 100.0))
    im = None
    for k, ax in enumerate(axes.flat):
        if k < n:
            im = ax.imshow(kernels[k], cmap=SIGNED_CMAP, norm=norm, interpolation="nearest")
            ax.set_title(_title(bank.names[k]), fontsize=7)
            _off(ax)
        else:
            ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=min(1.0, 0.9 / rows + 0.5), label="weight (white = 0)")
    kh, kw = bank.kernel_size
    stride = f", stride {bank.stride}" if bank.stride != 1 else ""
    shown = f" (first {n} shown)" if n < n_all else ""
    return finish_grid(fig, title or f"{bank.name}: {n_all} kernels, {kh}x{kw}{stride}{shown}")


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
    percentile: float = RESPONSE_PERCENTILE,
    title: str = "",
) -> Figure:
    """A grid of images x filters: each row one image, then its response to every filter.

    Signed responses use a diverging map centred on 0 (``CenteredNorm``: symmetric limits); non-negative
    ones a sequential map from 0. Each panel's limit is the ``percentile`` of its |values| (see
    :func:`colour_limit`), so a few extreme pixels (e.g. zero padding around a bright photo) saturate
    instead of washing the rest out.

    Args:
        images: The input images, ``[N, C, H, W]`` or a list of ``[C, H, W]`` (sizes may differ).
        responses: Per image ``[out, H', W']`` (a list, or one ``[N, out, H', W']`` tensor), in the order
            of ``names`` (e.g. ``bank.response_names`` from :func:`cnnlab.filters.apply_bank`); only the
            first ``max_filters`` are drawn, so a caller may pass just those.
        names: One title per response (the filter parameters).
        max_filters: At most this many response columns (the first ones).
        row_labels: One label per image (e.g. its class or file name).
        nonnegative: Per response, True to draw it with a sequential map from 0 (e.g. a gradient
            magnitude; ``bank.nonnegative_responses`` says which); default: responses with no negative
            and some positive values (an all-zero response stays on the signed scale: neutral).
        percentile: Percentile of |response| that sets each panel's colour limit (100: the maximum).
        title: Figure title.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    n_img = len(images)
    n_resp = min(len(names), max_filters, *(len(r) for r in responses))
    if nonnegative is None:
        nonnegative = [all(bool((r[j] >= 0).all()) for r in responses)
                       and any(bool((r[j] > 0).any()) for r in responses) for j in range(n_resp)]
    cols = n_resp + 1
    fig = Figure(figsize=(1.45 * cols, 1.55 * n_img + 0.7))
    axes = fig.subplots(n_img, cols, squeeze=False)
    for i in range(n_img):
        arr, opts = _image_panel(images[i])
        axes[i, 0].imshow(arr, interpolation="nearest", **opts)
        _off(axes[i, 0])
        if row_labels is not None:
            axes[i, 0].set_ylabel(_title(str(row_labels[i]), 16), fontsize=7)
        resp = responses[i][:n_resp].detach().cpu().to(torch.float64).numpy()
        for j in range(n_resp):
            _draw(axes[i, j + 1], resp[j], signed=not nonnegative[j], percentile=percentile)
            _off(axes[i, j + 1])
    axes[0, 0].set_title("image", fontsize=7)
    for j in range(n_resp):
        axes[0, j + 1].set_title(_title(names[j]), fontsize=7)
    _response_keys(fig, axes, signed=not all(nonnegative[:n_resp]), unsigned=any(nonnegative[:n_resp]),
                   percentile=percentile)
    shown = f" (first {n_resp} of {len(names)})" if n_resp < len(names) else ""
    scale = f"; L: each panel's {percentile:g}th percentile of |response|"
    return finish_grid(fig, (title or "filter responses") + shown + scale)


def _response_keys(fig: Figure, axes: Any, *, signed: bool, unsigned: bool, percentile: float) -> None:
    """Colour bars that read every panel: each panel has its own limit L (the percentile of its |values|),
    so the bar is in units of L: diverging and centred at 0 for signed responses, sequential from 0 else."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import CenteredNorm, Normalize

    fig.set_size_inches(fig.get_figwidth() + 0.8, max(fig.get_figheight(), 2.8))  # room for the bars
    if signed:
        bar = fig.colorbar(ScalarMappable(CenteredNorm(0.0, 1.0), colormaps[SIGNED_CMAP]), ax=axes,
                           shrink=0.7, ticks=[-1, 0, 1])
        bar.ax.set_yticklabels(["−L", "0", "+L"])
        bar.set_label("signed response / L", fontsize=7)
    if unsigned:
        bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), colormaps[NONNEGATIVE_CMAP]), ax=axes,
                           shrink=0.7, ticks=[0, 1])
        bar.ax.set_yticklabels(["0", "L"])
        bar.set_label("magnitude / L", fontsize=7)
