"""The comparison of several runs: their curves overlaid and one table of what each achieved.

The course's comparisons read from it directly: no augmentation vs augmentation, or scratch vs features vs
partial vs full transfer of the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import CnnlabError
from .context import RunContext, Unavailable
from .document import Block, Missing, Section, Table, figure_picture, fmt_int, fmt_seconds, rows_of
from .sec_header import option_text
from .sec_training import best_row

COLUMNS = (
    "run",
    "verdict",
    "model",
    "transfer",
    "augment",
    "epochs",
    "kept epoch",
    "val acc (kept)",
    "evaluate acc",
    "val loss (kept)",
    "wall time",
    "trainable params",
)


def wall_time(ctx: RunContext) -> str:
    """The whole wall time of the run (``run.json``: decoding, embeddings, training, export), else the
    training epochs' alone (``timing.csv``, said so)."""
    try:
        seconds = ctx.info.get("wall_seconds")
    except Unavailable:
        seconds = None
    if isinstance(seconds, (int, float)):
        return fmt_seconds(float(seconds))
    try:
        return fmt_seconds(sum(r["seconds"] for r in ctx.csv_rows("timing.csv"))) + " (epochs only)"
    except Unavailable:
        return "--"


def _row(ctx: RunContext) -> tuple[Any, ...]:
    from .sec_verdict import run_verdict_of

    cfg = ctx.config
    try:
        verdict = str(run_verdict_of(ctx).get("status", "--"))
    except (Unavailable, CnnlabError):
        verdict = "--"
    cells: list[Any] = [ctx.name, verdict, cfg.model, option_text(cfg.transfer), cfg.augment]
    try:
        rows = ctx.csv_rows("metrics.csv")
        best = best_row(rows)  # the kept weights: the lowest validation loss
        epochs, kept = len(rows), int(best["epoch"])
        acc, loss = f"{best['val_acc']:.2%}", f"{best['val_loss']:.4f}"
    except Unavailable:
        epochs, kept, acc, loss = "--", "--", "--", "--"  # type: ignore[assignment]
    try:
        evaluated = f"{ctx.evaluation.accuracy:.2%}"
    except (Unavailable, CnnlabError):
        evaluated = "--"
    cells += [epochs, kept, acc, evaluated, loss]
    cells.append(wall_time(ctx))
    try:
        cells.append(fmt_int(ctx.info.get("params", {}).get("trainable", 0)))
    except Unavailable:
        cells.append("--")
    return tuple(cells)


def comparison_section(contexts: Sequence[RunContext]) -> Section:
    """One table of each run's verdict, its kept weights' scores, wall time and parameters; the curves
    overlaid."""
    from .plots import compare_curves_figure

    blocks: list[Block] = [
        Table(
            COLUMNS,
            rows_of(_row(c) for c in contexts),
            caption="kept: the epoch of the lowest validation loss, whose weights the run keeps; val acc "
            "(kept): that epoch's validation accuracy; evaluate acc: `cnnlab evaluate` of the kept weights; "
            "wall time: the whole run (decoding and embeddings included); verdict: see each run's report",
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
