"""Rendering a :class:`~cnnlab.summary.records.ModelSummary` as a rich table (printing is the caller's)."""

from __future__ import annotations

from typing import Any

from .records import LayerRecord, ModelSummary


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


def summary_table(summary: ModelSummary, *, max_depth: int | None = None) -> Any:
    """A ``rich.table.Table``: one row per layer call, then totals as the caption.

    Args:
        summary: From :func:`~cnnlab.summary.summarize`.
        max_depth: Hide rows nested deeper than this (None = all).

    Returns:
        The table.
    """
    from rich.table import Table

    title = f"{summary.model_name}  input {'x'.join(map(str, summary.input_size))}"
    table = Table(title=title, show_lines=False)
    for col, just in (
        ("Layer", "left"),
        ("Type", "left"),
        ("Output shape", "right"),
        ("Params", "right"),
        ("Frozen", "right"),
        ("Mult-adds", "right"),
        ("RF", "right"),
        ("Jump", "right"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for rec in summary.layers:
        if rec.depth == 0 or (max_depth is not None and rec.depth > max_depth):
            continue
        rf, jump = _field_cells(rec)
        params = "(recursive)" if rec.recursive else (f"{rec.params:,}" if rec.params else "--")
        table.add_row(
            "  " * (rec.depth - 1) + (rec.name.rsplit(".", 1)[-1] if rec.depth > 1 else rec.name),
            rec.type,
            "x".join(map(str, rec.output_shape)) or "--",
            params,
            f"{rec.frozen_params:,}" if rec.frozen_params and not rec.recursive else "--",
            f"{rec.mult_adds:,}" if rec.is_leaf and rec.mult_adds else "--",
            rf,
            jump,
        )
    table.caption = (
        f"Total params {summary.total_params:,}  trainable {summary.trainable_params:,}  "
        f"frozen {summary.frozen_params:,}  mult-adds {summary.mult_adds / 1e6:,.2f}M"
    )
    return table
