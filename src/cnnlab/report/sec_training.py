"""Section 4 of a run's report: learning curves with the overfitting marker, best epoch, time per epoch."""

from __future__ import annotations

from .context import RunContext, Unavailable, blocks_of
from .document import Block, Facts, Section, Table, Text, figure_picture, fmt_seconds, png_picture, rows_of


def best_row(rows: list[dict[str, float]]) -> dict[str, float]:
    """The epoch of the lowest validation loss (the weights ``model.safetensors`` holds)."""
    return min(rows, key=lambda r: r["val_loss"])


def _curves(ctx: RunContext) -> list[Block]:
    from .plots import curves_figure, curves_title, overfitting_onset

    rows = ctx.csv_rows("metrics.csv")
    try:
        num_classes: int | None = int(ctx.info["num_classes"])  # the chance and uniform-guess lines
    except (Unavailable, KeyError, TypeError, ValueError):
        num_classes = None
    cfg = ctx.config
    title = curves_title(cfg.model or "model", cfg.transfer, cfg.data)
    fig = curves_figure(rows, title=title, num_classes=num_classes)
    onset = overfitting_onset([r["val_loss"] for r in rows], [r["train_loss"] for r in rows])
    best = best_row(rows)
    facts = [
        (
            "best epoch",
            f"{int(best['epoch'])} of {len(rows)}: validation loss {best['val_loss']:.4f}, "
            f"accuracy {best['val_acc']:.2%} (these are the weights of model.safetensors)",
        ),
        ("last epoch", f"validation loss {rows[-1]['val_loss']:.4f}, accuracy {rows[-1]['val_acc']:.2%}"),
    ]
    if onset is None:
        marker = (
            "No overfitting marker: the validation loss does not turn up for good in these epochs "
            "(a single bump, a flat tail or a minimum in the last epochs does not count)."
        )
    else:
        marker = (
            f"The dashed red line marks overfitting from epoch {int(rows[onset]['epoch'])}: the smoothed "
            "validation loss is lowest there and stays above it while the training loss keeps falling."
        )
    return [
        figure_picture(fig, "training and validation loss and accuracy per epoch"),
        Text(marker),
        Facts(tuple(facts)),
    ]


def _lr_found(ctx: RunContext) -> list[Block]:
    """With ``lr_find``: the rate the learning-rate finder suggested (the run's ``lr``) and its curve."""
    cfg = ctx.config
    if not cfg.lr_find:
        return []
    facts = Facts((("learning rate", f"{cfg.learning_rate:.3g}, suggested by the learning-rate finder "
                                     "(the steepest descent of the loss as the rate grows)"),))
    path = ctx.path / "lr_find.png"
    try:
        picture = png_picture(path.read_bytes(), "learning-rate finder: loss against learning rate")
    except (OSError, ValueError) as exc:
        return [facts, Text(f"{path}: cannot be shown ({exc})")]
    return [facts, picture]


def _epochs(ctx: RunContext) -> list[Block]:
    rows = ctx.csv_rows("metrics.csv")
    try:
        timing = {int(t["epoch"]): t for t in ctx.csv_rows("timing.csv")}
        note = ""
    except Unavailable as exc:
        timing, note = {}, f"; no times: {exc}"
    table = []
    for r in rows:
        t = timing.get(int(r["epoch"]))
        table.append(
            (
                int(r["epoch"]),
                f"{r['train_loss']:.4f}",
                f"{r['train_acc']:.2%}",
                f"{r['val_loss']:.4f}",
                f"{r['val_acc']:.2%}",
                f"{r['lr']:.3g}",
                f"{t['seconds']:.1f}" if t else "--",
                f"{t['train_images_per_s']:,.0f}" if t else "--",
            )
        )
    blocks: list[Block] = []
    if timing:
        seconds = [t["seconds"] for t in timing.values()]
        blocks.append(
            Facts(
                (
                    (
                        "time",
                        f"{fmt_seconds(sum(seconds))} in {len(seconds)} epoch(s), "
                        f"{sum(seconds) / len(seconds):.1f} s per epoch on average",
                    ),
                )
            )
        )
    columns = ("epoch", "train loss", "train acc", "val loss", "val acc", "lr", "seconds", "train img/s")
    blocks.append(
        Table(
            columns,
            rows_of(table),
            caption=f"metrics.csv and timing.csv, every epoch{note}",
            scroll=len(table) > 40,
        )
    )
    return blocks


def training_section(ctx: RunContext) -> Section:
    """The curves (``metrics.csv``) with the overfitting onset, the best epoch and the seconds per epoch."""
    blocks = blocks_of(lambda: _curves(ctx), lambda: _lr_found(ctx), lambda: _epochs(ctx))
    return Section("training", "Training", blocks)
