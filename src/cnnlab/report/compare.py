"""The comparison of several runs: their curves overlaid and one table of what each achieved.

The course's comparisons read from it directly: no augmentation vs augmentation, or scratch vs features vs
partial vs full transfer of the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .context import RunContext, Unavailable
from .document import Block, Missing, Section, Table, figure_picture, fmt_int, fmt_seconds, rows_of
from .sec_header import option_text
from .sec_training import best_row

COLUMNS = (
    "run",
    "model",
    "data",
    "transfer",
    "augment",
    "epochs",
    "best epoch",
    "best val acc",
    "best val loss",
    "training time",
    "trainable params",
    "frozen params",
)


def _row(ctx: RunContext) -> tuple[Any, ...]:
    cfg = ctx.config
    cells: list[Any] = [ctx.name, cfg.model, cfg.data, option_text(cfg.transfer), cfg.augment]
    try:
        rows = ctx.csv_rows("metrics.csv")
        best = best_row(rows)
        cells += [
            len(rows),
            int(best["epoch"]),
            f"{max(r['val_acc'] for r in rows):.2%}",
            f"{best['val_loss']:.4f}",
        ]
    except Unavailable:
        cells += ["--"] * 4
    try:
        cells.append(fmt_seconds(sum(r["seconds"] for r in ctx.csv_rows("timing.csv"))))
    except Unavailable:
        cells.append("--")
    try:
        params = ctx.info.get("params", {})
        cells += [fmt_int(params.get("trainable", 0)), fmt_int(params.get("frozen", 0))]
    except Unavailable:
        cells += ["--", "--"]
    return tuple(cells)


def comparison_section(contexts: Sequence[RunContext]) -> Section:
    """One table of best accuracy/loss, epochs, time and parameters per run, and the curves overlaid."""
    from .plots import compare_curves_figure

    blocks: list[Block] = [
        Table(
            COLUMNS,
            rows_of(_row(c) for c in contexts),
            caption="best val acc: the highest validation accuracy of any epoch; best val "
            "loss: the lowest validation loss (its epoch's weights are kept)",
        )
    ]
    curves: dict[str, list[dict[str, float]]] = {}
    for ctx in contexts:
        try:
            curves[ctx.name] = ctx.csv_rows("metrics.csv")
        except Unavailable as exc:
            blocks.append(Missing(f"{ctx.name}: no curves ({exc})"))
    if curves:
        fig = compare_curves_figure(
            curves, title=f"{len(curves)} runs: validation (solid) and training (dashed)"
        )
        blocks.insert(
            1,
            figure_picture(
                fig,
                "the learning curves of every run, overlaid",
                caption="one colour per run; a circled dot marks a run's overfitting onset",
            ),
        )
    return Section("comparison", "Comparison", blocks)
