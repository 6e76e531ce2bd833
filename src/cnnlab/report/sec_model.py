"""Section 3 of a run's report: the model summary (shapes, parameters, receptive field and jump per layer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .context import RunContext, blocks_of
from .document import Block, Facts, Section, Table, fmt_int, rows_of

if TYPE_CHECKING:
    from ..summary import LayerRecord

COLUMNS = ("layer", "type", "output shape", "params", "frozen", "mult-adds", "receptive field", "jump")
#: Indentation of a nested layer's name, per level (non-breaking spaces survive HTML whitespace rules).
INDENT = "\u00a0\u00a0"


def layer_row(rec: LayerRecord) -> tuple[str, ...]:
    """One table row of a summary record: the cells of ``cnnlab summary``, the full name indented."""
    from ..summary.records import layer_cells

    name, *cells = layer_cells(rec)
    return (INDENT * (rec.depth - 1) + name, *cells)


def _summary(ctx: RunContext) -> list[Block]:
    s = ctx.summary
    rows = rows_of(layer_row(r) for r in s.layers if r.depth > 0)
    totals = Facts(
        (
            ("input", "x".join(map(str, s.input_size))),
            (
                "parameters",
                f"{fmt_int(s.total_params)} (trainable {fmt_int(s.trainable_params)}, "
                f"frozen {fmt_int(s.frozen_params)})",
            ),
            ("mult-adds per image", f"{s.mult_adds / 1e6:,.2f} M"),
            ("layers", f"{sum(r.is_leaf for r in s.layers):,} leaf modules"),
        )
    )
    caption = (
        f"{s.model_name}: every layer call (torchinfo), with the receptive field and jump of its output "
        "in input pixels; (all) = the field covers the whole input"
    )
    return [totals, Table(COLUMNS, rows, caption=caption, scroll=len(rows) > 40)]


def model_section(ctx: RunContext) -> Section:
    """The :func:`cnnlab.summary.summarize` table of the trained model, and its totals."""
    return Section("model", "Model", blocks_of(lambda: _summary(ctx)))
