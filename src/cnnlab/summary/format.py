"""Rendering a :class:`~cnnlab.summary.records.ModelSummary`: a rich table (terminal) and HTML (notebooks).

Both show the same cells (:func:`summary_rows`); printing or displaying them is the caller's.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import LayerRecord, ModelSummary

#: The columns of the summary table and their alignment.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Layer", "left"),
    ("Type", "left"),
    ("Output shape", "right"),
    ("Params", "right"),
    ("Frozen", "right"),
    ("Mult-adds", "right"),
    ("RF", "right"),
    ("Jump", "right"),
)


def _fmt_pair(v: Any) -> str:
    if v is None:
        return "--"
    if isinstance(v, list):
        return "x".join(str(a) for a in v)
    return str(v)


def _field_cells(rec: LayerRecord) -> tuple[str, str]:
    d = rec.to_dict()
    rf = _fmt_pair(d["receptive_field"])
    if d["global"]:
        return f"{rf} (all)", "--"
    return rf, _fmt_pair(d["jump"])


def layer_cells(rec: LayerRecord) -> list[str]:
    """The cells of one row, in the order of :data:`COLUMNS`; the layer cell is the full dotted name.

    Args:
        rec: One record of a :class:`~cnnlab.summary.records.ModelSummary`.

    Returns:
        Texts: name, type, output shape, params ("(recursive)" for a repeated call), frozen params,
        mult-adds (leaf layers), receptive field ("N (all)" when it covers the input) and jump ("--" when
        none applies).
    """
    rf, jump = _field_cells(rec)
    params = "(recursive)" if rec.recursive else (f"{rec.params:,}" if rec.params else "--")
    return [
        rec.name,
        rec.type,
        "x".join(map(str, rec.output_shape)) or "--",
        params,
        f"{rec.frozen_params:,}" if rec.frozen_params and not rec.recursive else "--",
        f"{rec.mult_adds:,}" if rec.is_leaf and rec.mult_adds else "--",
        rf,
        jump,
    ]


def summary_rows(
    summary: ModelSummary, *, max_depth: int | None = None
) -> Iterator[tuple[LayerRecord, list[str]]]:
    """The table's rows: each layer call (the model's own row left out) with its cells as text.

    Args:
        summary: From :func:`~cnnlab.summary.summarize`.
        max_depth: Leave out rows nested deeper than this (None = all).

    Yields:
        ``(record, cells)``: the cells in the order of :data:`COLUMNS`; the layer cell is the last part of
        the dotted name below the top level (the caller indents it by ``record.depth``).
    """
    for rec in summary.layers:
        if rec.depth == 0 or (max_depth is not None and rec.depth > max_depth):
            continue
        cells = layer_cells(rec)
        cells[0] = rec.name.rsplit(".", 1)[-1] if rec.depth > 1 else rec.name
        yield rec, cells


def _title(summary: ModelSummary) -> str:
    return f"{summary.model_name}  input {'x'.join(map(str, summary.input_size))}"


def summary_totals(summary: ModelSummary) -> str:
    """The totals line: parameters (all, trainable, frozen) and mult-adds per image."""
    return (
        f"Total params {summary.total_params:,}  trainable {summary.trainable_params:,}  "
        f"frozen {summary.frozen_params:,}  mult-adds {summary.mult_adds / 1e6:,.2f}M"
    )


def summary_table(summary: ModelSummary, *, max_depth: int | None = None) -> Any:
    """A ``rich.table.Table``: one row per layer call, then totals as the caption.

    Args:
        summary: From :func:`~cnnlab.summary.summarize`.
        max_depth: Hide rows nested deeper than this (None = all).

    Returns:
        The table.
    """
    from rich.table import Table

    table = Table(title=_title(summary), show_lines=False)
    for col, just in COLUMNS:
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for rec, cells in summary_rows(summary, max_depth=max_depth):
        table.add_row("  " * (rec.depth - 1) + cells[0], *cells[1:])
    table.caption = summary_totals(summary)
    return table


def summary_html(summary: ModelSummary, *, max_depth: int | None = None) -> str:
    """The summary table as one HTML ``<table>`` (what a notebook shows for a ``ModelSummary``).

    The same rows and cells as :func:`summary_table`: nested layers are indented by their depth, the
    totals line is the table's footer. Every text is HTML-escaped.

    Args:
        summary: From :func:`~cnnlab.summary.summarize`.
        max_depth: Leave out rows nested deeper than this (None = all).

    Returns:
        An HTML fragment (no ``<html>``/``<body>``), self-contained: styles are inline.
    """
    esc = html.escape
    cell = "padding:1px 8px;text-align:{}"
    head = "".join(f'<th style="{cell.format(just)}">{esc(col)}</th>' for col, just in COLUMNS)
    body = []
    for rec, cells in summary_rows(summary, max_depth=max_depth):
        tds = [f'<td style="{cell.format(COLUMNS[0][1])};padding-left:{0.3 + 1.2 * (rec.depth - 1):.1f}em"'
               f' title="{esc(rec.name)}">{esc(cells[0])}</td>']
        tds += [f'<td style="{cell.format(just)}">{esc(text)}</td>'
                for text, (_, just) in zip(cells[1:], COLUMNS[1:], strict=True)]
        body.append(f"<tr>{''.join(tds)}</tr>")
    return (
        '<table class="cnnlab-summary" style="border-collapse:collapse;font-size:90%">'
        f'<caption style="text-align:left;font-weight:bold">{esc(_title(summary))}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
        f'<tfoot><tr><td colspan="{len(COLUMNS)}" style="padding:4px 8px;border-top:1px solid #999">'
        f"{esc(summary_totals(summary))}</td></tr></tfoot></table>"
    )
