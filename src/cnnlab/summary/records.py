"""A model summary as data and as text: one :class:`LayerRecord` per layer call, the :class:`ModelSummary`
with its totals, and the two forms it is shown in: a rich table (terminal) and HTML (notebooks).

Both forms show the same cells (:func:`summary_rows`); printing or displaying them is the caller's.
:func:`cnnlab.summary.summarize` (:mod:`.measure`) fills the records.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..receptive.tracker import Field


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(float(v), 4)


def _pair_out(p: tuple[Any, ...] | None) -> int | float | list[int | float] | None:
    """A square (rows == cols) value, or a series' (samples,), as one number, else [rows, cols]."""
    if p is None:
        return None
    values = [_num(v) for v in p]
    return values[0] if len(set(values)) == 1 else values


@dataclass
class LayerRecord:
    """One row of the summary (one call of one module, as torchinfo lists it).

    Attributes:
        name: Dotted module name (``model.get_submodule(name)``); "" is the model itself.
        type: Module class name.
        depth: Nesting depth (0 = the model).
        is_leaf: The module has no children.
        output_shape: Output shape without the batch dimension.
        params: Parameters of the module (with its children), as torchinfo counts them.
        trainable_params: Of those, the ones with ``requires_grad``.
        mult_adds: torchinfo's mult-adds of the module (leaf layers; 0 for containers).
        field: Receptive field and jump of the output (None when not modelled).
        recursive: The module was already listed (called again); its params are not counted twice.
    """

    name: str
    type: str
    depth: int
    is_leaf: bool
    output_shape: list[int]
    params: int
    trainable_params: int
    mult_adds: int
    field: Field | None
    recursive: bool = False

    @property
    def frozen_params(self) -> int:
        """Parameters with ``requires_grad=False``."""
        return self.params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``receptive_field``/``jump``: numbers when square (or 1-D), else ``[rows, cols]``."""
        f = self.field
        return {
            "name": self.name,
            "type": self.type,
            "depth": self.depth,
            "output_shape": self.output_shape,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
            "mult_adds": self.mult_adds,
            "receptive_field": _pair_out(f.rf) if f else None,
            "jump": _pair_out(f.jump) if f else None,
            "global": bool(f and f.is_global),
        }


@dataclass
class ModelSummary:
    """What :func:`~cnnlab.summary.summarize` returns: torchinfo's totals, one :class:`LayerRecord` a row."""

    model_name: str
    input_size: tuple[int, ...]
    total_params: int
    trainable_params: int
    mult_adds: int
    layers: list[LayerRecord] = field(default_factory=list)

    @property
    def frozen_params(self) -> int:
        """Total parameters with ``requires_grad=False``."""
        return self.total_params - self.trainable_params

    def layer(self, name: str) -> LayerRecord:
        """The first row of the module named ``name``."""
        for rec in self.layers:
            if rec.name == name:
                return rec
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The stable ``--json`` form.

        ``{"model", "input_size", "total_params", "trainable_params", "frozen_params", "mult_adds",
        "layers": [{"name", "type", "depth", "output_shape", "params", "trainable_params", "frozen_params",
        "mult_adds", "receptive_field", "jump", "global"}]}`` (the model's own row is left out).
        """
        return {
            "model": self.model_name,
            "input_size": list(self.input_size),
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
            "mult_adds": self.mult_adds,
            "layers": [r.to_dict() for r in self.layers if r.depth > 0],
        }

    def _repr_html_(self) -> str:
        """The summary table in a notebook (:func:`summary_html`)."""
        return summary_html(self)


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
        rec: One record of a :class:`ModelSummary`.

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
