"""What a notebook shows for results that no other figure draws: a batch of CAM maps on their own, and an
evaluation as HTML tables (accuracy, loss, per-class precision/recall/F1, the confusion matrix).

Importing this module registers, for each result type, the figure its ``_repr_png_``/``_repr_html_``
shows (:mod:`cnnlab._show`): these two, and for feature maps and filter visualisations the figure the
command line saves (:mod:`cnnlab.report.interpret_plots`). The results are plain data and import no figure.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._show import register_html, register_png
from ..interpret.cam import CamResult
from ..interpret.feature_maps import FeatureMaps
from ..interpret.filter_vis import FilterVisResult
from ..train.evaluate import EvalResult
from ._png import figure_png
from .grids import finish_grid
from .interpret_plots import feature_map_figure, filter_vis_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MAX_CONFUSION_CLASSES", "cam_maps_figure", "evaluation_html"]

#: Above this many classes the confusion matrix is summarised, not tabulated (1000 x 1000 cells help nobody).
MAX_CONFUSION_CLASSES = 30


def cam_maps_figure(result: CamResult, *, class_names: Sequence[str] | None = None, max_images: int = 16,
                    cols: int = 4) -> Figure:
    """The class activation maps of a batch as a grid of heatmaps, each titled with its class and score.

    The result holds the maps, not the images, so only the maps are drawn; to see them on the images
    use :func:`cnnlab.report.cam_overlay_figure`.

    Args:
        result: From :func:`cnnlab.interpret.explain` (or any CAM method).
        class_names: Names of the classes (default: the explained class is shown by its index).
        max_images: Draw the first this many maps.
        cols: Tiles per row.

    Returns:
        The figure; every map is drawn on the same [0, 1] scale (each map is min-max normalised by the
        method), with one colour bar. A map that is 0 everywhere (the weighted channels sum to nothing
        positive) says so in its title.
    """
    from matplotlib.figure import Figure

    n_all = int(result.maps.shape[0])
    n = max(1, min(n_all, max_images))
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    fig = Figure(figsize=(1.9 * cols + 0.8, 2.0 * rows + 0.5))
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        image = ax.imshow(result.maps[i].detach().float().cpu().numpy(), cmap="jet", vmin=0.0, vmax=1.0)
        t = int(result.targets[i])
        name = class_names[t] if class_names is not None and t < len(class_names) else f"class {t}"
        flat = " (map 0: no positive evidence)" if float(result.maps[i].max()) == 0.0 else ""
        ax.set_title(f"{name}\nscore {float(result.scores[i]):.3g}{flat}", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="map (0 = least, 1 = most)")
    shown = f" (first {n} of {n_all})" if n < n_all else ""
    return finish_grid(fig, f"{result.method} maps of layer {result.layer}{shown}", fontsize=10)


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _per_class_rows(result: EvalResult, classes: list[str]) -> str:
    rows = []
    for c in classes:
        m = result.per_class.get(c)
        if m is None:
            continue
        cells = "".join(f'<td style="text-align:right;padding:1px 8px">{v:.3f}</td>'
                        for v in (m["precision"], m["recall"], m["f1"]))
        support = f'<td style="text-align:right;padding:1px 8px">{int(m["support"]):,}</td>'
        rows.append(f'<tr><td style="padding:1px 8px">{html.escape(c)}</td>{cells}{support}</tr>')
    return "".join(rows)


def _confusion_table(result: EvalResult, classes: list[str]) -> str:
    n = len(result.confusion)
    if n > MAX_CONFUSION_CLASSES:
        return (f"<p>Confusion matrix: {n} classes, too many to tabulate; draw it with "
                "<code>cnnlab.report.confusion_figure</code>.</p>")
    esc = html.escape
    head = "".join(f'<th style="padding:1px 6px;writing-mode:vertical-rl" title="{esc(c)}">{esc(c)}</th>'
                   for c in classes)
    rows = []
    for i, row in enumerate(result.confusion):
        total = max(1, sum(row))
        cells = []
        for j, count in enumerate(row):
            shade = f"background:rgba(31,119,180,{0.85 * count / total:.2f})" if count else ""
            weight = ";font-weight:bold" if i == j else ""
            cells.append(f'<td style="text-align:right;padding:1px 6px;{shade}{weight}">{count:,}</td>')
        label = esc(classes[i]) if i < len(classes) else str(i)
        rows.append(f'<tr><th style="text-align:left;padding:1px 6px">{label}</th>{"".join(cells)}</tr>')
    return ('<table class="cnnlab-confusion" style="border-collapse:collapse;font-size:90%">'
            "<caption style=\"text-align:left\">confusion matrix (rows true, columns predicted; "
            "shade: share of the row)</caption>"
            f"<thead><tr><th>true \\ predicted</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def evaluation_html(result: EvalResult) -> str:
    """An evaluation as HTML: accuracy and loss, a per-class table and the confusion matrix as a table.

    Args:
        result: From :func:`cnnlab.train.evaluate`.

    Returns:
        An HTML fragment with inline styles; every class name is HTML-escaped. The confusion matrix is
        tabulated up to :data:`MAX_CONFUSION_CLASSES` classes (then a line says where to draw it).
    """
    classes = list(result.classes) or list(result.per_class)
    images = sum(sum(row) for row in result.confusion)
    per_class = (
        '<table class="cnnlab-per-class" style="border-collapse:collapse;font-size:90%">'
        "<thead><tr><th style=\"text-align:left;padding:1px 8px\">class</th>"
        + "".join(f'<th style="text-align:right;padding:1px 8px">{h}</th>'
                  for h in ("precision", "recall", "F1", "support"))
        + f"</tr></thead><tbody>{_per_class_rows(result, classes)}</tbody></table>"
    )
    return (
        '<div class="cnnlab-evaluation">'
        f"<p><b>accuracy</b> {_pct(result.accuracy)} &nbsp; <b>loss</b> {result.loss:.4f} &nbsp; "
        f"on {images:,} images</p>"
        f'<div style="display:flex;gap:2em;align-items:flex-start">{per_class}'
        f"{_confusion_table(result, classes)}</div></div>"
    )


@register_png(CamResult)
def _cam_png(result: CamResult) -> bytes:
    return figure_png(cam_maps_figure(result))


@register_png(FeatureMaps)
def _feature_maps_png(result: FeatureMaps) -> bytes:
    return figure_png(feature_map_figure(result))


@register_png(FilterVisResult)
def _filter_vis_png(result: FilterVisResult) -> bytes:
    return figure_png(filter_vis_figure(result))


register_html(EvalResult)(evaluation_html)
