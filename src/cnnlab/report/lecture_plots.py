"""Lecture figures of a network's geometry: the receptive field on the input, and convolution arithmetic.

Each function takes what the library returns (:class:`cnnlab.receptive.view.ReceptiveFieldView`,
:class:`cnnlab.summary.arithmetic.ConvArithmetic`) and builds a ``matplotlib.figure.Figure`` directly
(no pyplot); save it with :func:`cnnlab._io.save_figure`. The drawn theoretical field is a
``Rectangle`` whose ``gid`` is :data:`FIELD_GID` (tests read it back); the arithmetic figure's formula
is the ``Text`` whose ``gid`` is :data:`FORMULA_GID`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .grids import finish_grid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..receptive.view import ReceptiveFieldView
    from ..summary.arithmetic import ConvArithmetic

__all__ = ["FIELD_GID", "FORMULA_GID", "conv_arithmetic_figure", "receptive_field_figure"]

FIELD_GID = "theoretical-field"
FORMULA_GID = "formula"
_FIRST, _SECOND = "tab:blue", "tab:orange"


def _canvas(image: torch.Tensor | None, size: tuple[int, int, int]) -> np.ndarray:
    """The image as float [H, W, 3] in [0, 1], or a neutral grey canvas."""
    if image is None:
        return np.full((size[1], size[2], 3), 0.5)
    arr = image.detach().cpu().float().numpy() / (255.0 if image.dtype == torch.uint8 else 1.0)
    arr = np.repeat(arr, 3, axis=0) if arr.shape[0] == 1 else arr
    return np.ascontiguousarray(arr.transpose(1, 2, 0)).clip(0, 1)


def _box_patch(view: ReceptiveFieldView, *, gid: str, colour: str = "tab:red") -> Any:
    from matplotlib.patches import Rectangle

    top, left, bottom, right = view.box
    return Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False, lw=2,
                     ec=colour, gid=gid)


def _limits(ax: Any, view: ReceptiveFieldView, box: tuple[float, float, float, float]) -> None:
    top, left, bottom, right = box
    ax.set_xlim(min(-0.5, left - 1.5), max(view.input_size[2] - 0.5, right + 1.5))
    ax.set_ylim(max(view.input_size[1] - 0.5, bottom + 1.5), min(-0.5, top - 1.5))
    ax.set_xticks([])
    ax.set_yticks([])


def _short(name: str) -> str:
    return name.removeprefix("features.")


def _layer_plot(ax: Any, view: ReceptiveFieldView) -> None:
    rows = view.layers
    x = np.arange(len(rows))
    rf = [r.rf[0] for r in rows]
    ax.plot(x, rf, "o-", color="tab:red", label="field size (px)")
    for i in range(len(rows)):
        grow = rf[i] - (rf[i - 1] if i else 1)
        ax.annotate(f"+{grow}", (x[i], rf[i]), textcoords="offset points", xytext=(-4, 7), ha="right",
                    fontsize=7, color="tab:red")
    ax.set_ylabel("receptive field (input px)", color="tab:red")
    ax.set_ylim(0, max([*rf, 1]) * 1.18)
    twin = ax.twinx()
    twin.step(x, [r.jump[0] for r in rows], "s--", where="post", color="tab:green", label="jump (px)")
    twin.set_ylabel("jump: input px between units", color="tab:green")
    twin.set_ylim(0, max([r.jump[0] for r in rows] + [1]) * 1.3)
    names = [r.name for r in rows]
    if view.layer in names:
        ax.axvline(names.index(view.layer), color="grey", ls=":", lw=1)
    step = max(1, len(rows) // 12)
    ax.set_xticks(x[::step], [f"{_short(r.name)}\n{r.what}" for r in rows[::step]], rotation=55, ha="right",
                  fontsize=7)
    ax.set_title("each layer adds d(k-1) x jump; pooling/stride multiplies the jump", fontsize=8)
    ax.grid(alpha=0.3)


def receptive_field_figure(view: ReceptiveFieldView, image: torch.Tensor | None = None) -> Figure:
    """The theoretical and effective receptive field of a unit on the input, and field/jump per layer.

    Args:
        view: From :func:`cnnlab.receptive.view.receptive_field_view`.
        image: uint8 ``[C, H, W]`` to draw on (None: a neutral grey canvas).

    Returns:
        A figure of three panels: the input with the theoretical field (red box, ``gid`` :data:`FIELD_GID`)
        and the effective field over it; the effective field alone, zoomed to the box; field size and
        jump after each layer that changes them.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 4.6), layout="constrained")  # before the colorbar: it makes room for it
    ax_img, ax_erf, ax_layers = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.3]})
    erf = view.erf.detach().cpu().float().numpy()
    peak = float(erf.max())
    norm = erf / peak if peak > 0 else erf
    heat = np.ma.masked_where(norm <= 0, norm)
    ax_img.imshow(_canvas(image, view.input_size), interpolation="nearest")
    ax_img.imshow(heat, cmap="magma", alpha=0.6, vmin=0, vmax=1, interpolation="nearest")
    ax_img.add_patch(_box_patch(view, gid=FIELD_GID))
    mid = ((view.box[0] + view.box[2]) / 2, (view.box[1] + view.box[3]) / 2)
    ax_img.plot(mid[1], mid[0], "+", color="cyan", ms=10, mew=2)
    _limits(ax_img, view, view.box)
    rf = view.field.rf
    ax_img.set_title(f"unit {view.unit} of {_short(view.layer)}: theoretical field {rf[0]}x{rf[1]} px",
                     fontsize=8)
    im = ax_erf.imshow(norm, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ax_erf.add_patch(_box_patch(view, gid=f"{FIELD_GID}-zoom", colour="tab:cyan"))
    top, left, bottom, right = view.box
    _limits(ax_erf, view, view.box)
    ax_erf.set_xlim(left - 1.5, right + 1.5)
    ax_erf.set_ylim(bottom + 1.5, top - 1.5)
    sb = view.support_box()
    support = f"non-zero on {sb[2] - sb[0] + 1}x{sb[3] - sb[1] + 1} px" if sb else "zero everywhere"
    ax_erf.set_title(f"effective field |∂unit/∂input|, {view.inputs}\n{support}, peak-normalised",
                     fontsize=8)
    fig.colorbar(im, ax=ax_erf, fraction=0.046, pad=0.04)
    _layer_plot(ax_layers, view)
    weights = "" if view.learned else " (random weights)"
    jump = view.field.jump[0] if view.field.jump else 0.0  # a view always has a spatial field
    return finish_grid(fig, f"{view.model_name}{weights}: receptive field of {view.layer}, jump {jump:g} px",
                       fontsize=11)


#: The most cells a grid of the arithmetic figure draws a side (a kernel wider than that is cut).
MAX_DRAWN = 32


def _shown(total: int, needed: int, cap: int = 16) -> int:
    return total if total <= cap else min(total, max(needed, 8), MAX_DRAWN)


def _grid(ax: Any, rows: int, cols: int, *, shaded: set[tuple[int, int]] | None = None) -> None:
    from matplotlib.patches import Rectangle

    for r in range(rows):
        for c in range(cols):
            pad = shaded is not None and (r, c) in shaded
            ax.add_patch(Rectangle((c, r), 1, 1, fc="0.85" if pad else "white", ec="0.6", lw=0.6,
                                   hatch="//" if pad else None))
    ax.set_xlim(-0.2, cols + 0.2)
    ax.set_ylim(rows + 0.2, -0.2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _taps(ax: Any, a: ConvArithmetic, origin: tuple[int, int], colour: str, gid: str,
          shown: tuple[int, int]) -> None:
    """The kernel's taps from ``origin``, those inside the ``shown`` (rows, cols) of the grid."""
    inside = [max(0, min(a.k[axis], -(-(shown[axis] - origin[axis]) // a.d[axis]))) for axis in (0, 1)]
    for i in range(inside[0]):
        for j in range(inside[1]):
            _cell(ax, origin[0] + i * a.d[0], origin[1] + j * a.d[1], colour, gid)


def _cell(ax: Any, r: int, c: int, colour: str, gid: str) -> None:
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((c + 0.12, r + 0.12), 0.76, 0.76, fc=colour, alpha=0.55, ec="none", gid=gid))


def _pool_values(ax_in: Any, ax_out: Any, a: ConvArithmetic, rows: int, cols: int,
                 pad_cells: set[tuple[int, int]]) -> None:
    """Write example input values (seeded digits) in the grid, each window's result in its output cell,
    and, for max pooling, each window's maximum in bold red: the arithmetic, not just its shape."""
    rng = np.random.default_rng(0)
    values = rng.integers(0, 10, size=(rows, cols))
    for r in range(rows):
        for c in range(cols):
            if (r, c) not in pad_cells:
                ax_in.text(c + 0.5, r + 0.5, str(values[r, c]), ha="center", va="center", fontsize=9,
                           color="#333", gid="value")
    for k, origin in enumerate([(0, 0)] + ([(0, a.s[1])] if a.out[1] > 1 else [])):
        taps = [(origin[0] + i * a.d[0], origin[1] + j * a.d[1])
                for i in range(a.k[0]) for j in range(a.k[1])]
        seen = [(r, c) for r, c in taps if (r, c) not in pad_cells and r < rows and c < cols]
        if not seen:
            continue
        got = [int(values[r, c]) for r, c in seen]
        if a.kind == "maxpool":
            best = max(got)
            result = str(best)
            for (r, c), v in zip(seen, got, strict=True):
                if v == best:
                    ax_in.text(c + 0.5, r + 0.5, str(v), ha="center", va="center", fontsize=10,
                               fontweight="bold", color="#c0392b", gid="max")
        else:
            result = f"{sum(got) / len(taps):.1f}"  # nn.AvgPool2d counts padding as 0 (count_include_pad)
        ax_out.text(k + 0.5, 0.5, result, ha="center", va="center", fontsize=10, fontweight="bold",
                    gid="pooled")


def conv_arithmetic_figure(a: ConvArithmetic) -> Figure:
    """One conv/pool layer: padded input grid, two kernel windows one stride apart, output grid, formula.

    The first output cell and the window it reads are blue, the next cell along the row and its window
    orange; hatched cells are padding. Large maps show their top-left corner (the panel title says
    how much). The formula, filled in with the layer's numbers, is the figure text whose ``gid`` is
    :data:`FORMULA_GID`.

    Args:
        a: From :func:`cnnlab.summary.arithmetic.arithmetic` or ``layer_arithmetic``.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    (pt, pb), (pl, pr) = a.pad
    padded = (a.n[0] + pt + pb, a.n[1] + pl + pr)
    span = (a.d[0] * (a.k[0] - 1) + 1, a.d[1] * (a.k[1] - 1) + 1)
    rows = _shown(padded[0], span[0] + 1)
    cols = _shown(padded[1], span[1] + a.s[1] + 1)
    out = a.out
    orows, ocols = _shown(out[0], 2, cap=12), _shown(out[1], 3, cap=12)
    fig = Figure(figsize=(10, 5.6))
    axes = fig.subplot_mosaic([["in", "out"], ["formula", "formula"]], height_ratios=[4, 1],
                              width_ratios=[max(cols, 4), max(ocols, 4)])
    ax_in, ax_out, ax_formula = axes["in"], axes["out"], axes["formula"]
    pad_cells = {(r, c) for r in range(rows) for c in range(cols)
                 if r < pt or c < pl or r >= pt + a.n[0] or c >= pl + a.n[1]}
    _grid(ax_in, rows, cols, shaded=pad_cells)
    _taps(ax_in, a, (0, 0), _FIRST, "window-1", (rows, cols))
    if out[1] > 1:
        _taps(ax_in, a, (0, a.s[1]), _SECOND, "window-2", (rows, cols))
    _grid(ax_out, orows, ocols)
    for (r, c), colour in [((0, 0), _FIRST)] + ([((0, 1), _SECOND)] if out[1] > 1 else []):
        _cell(ax_out, r, c, colour, "output")
    if a.kind in ("maxpool", "avgpool"):
        _pool_values(ax_in, ax_out, a, rows, cols, pad_cells)
    corner = lambda shown, total: "" if shown == total else f" (top-left {shown} of {total} shown)"  # noqa: E731
    if (pt, pb, pl, pr) == (0,) * 4:
        pad_txt = "no padding"
    elif (pt, pb, pl, pr) == (pt,) * 4:
        pad_txt = f"padding {pt} (hatched)"
    else:
        pad_txt = f"padding {pt},{pb} rows / {pl},{pr} cols (hatched)"
    ax_in.set_title(f"input {a.n[0]}x{a.n[1]}, {pad_txt}{corner(cols, padded[1])}\n"
                    f"kernel {a.k[0]}x{a.k[1]}, stride {a.s[0]}, dilation {a.d[0]}: "
                    "two windows one stride apart", fontsize=9)
    ax_out.set_title(f"output {out[0]}x{out[1]}{corner(ocols, out[1])}", fontsize=9)
    numbers = f"n={a.n[0]}, k={a.k[0]}, p={pt}, s={a.s[0]}, d={a.d[0]}"
    lines = ["out = ⌊(n + 2p − d(k − 1) − 1) / s⌋ + 1",
             f"{'rows' if not a.square else numbers}:  {a.formula(0)}"]
    if not a.square:
        lines.append(f"cols:  {a.formula(1)}")
    if a.ceil_mode:
        lines[0] = "out = ⌈(n + 2p − d(k − 1) − 1) / s⌉ + 1  (ceil_mode)"
    ax_formula.axis("off")
    ax_formula.text(0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=11, gid=FORMULA_GID,
                    transform=ax_formula.transAxes)
    what = {"conv": "convolution", "maxpool": "max pooling", "avgpool": "average pooling"}[a.kind]
    chans = f", {a.channels[0]} -> {a.channels[1]} channels" if a.channels else ""
    return finish_grid(fig, f"{a.layer + ': ' if a.layer else ''}{what}{chans}", fontsize=11)
