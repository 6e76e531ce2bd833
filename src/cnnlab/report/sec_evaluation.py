"""Section 5 of a run's report: accuracy, per-class metrics, the confusion matrix and the top losses.

The numbers come from :func:`cnnlab.train.evaluate.evaluate` on the validation split; when the data is not
reachable they come from the run's ``evaluation.json`` (written by ``cnnlab evaluate``), if there is one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .context import RunContext, Unavailable, attempt
from .document import Block, Facts, Gallery, Missing, Section, Table, Text, figure_picture, rows_of, shown_of
from .tiles import METHOD, explain_images, tile

if TYPE_CHECKING:
    from ..train.evaluate import EvalResult

#: Past this many classes the confusion matrix is sorted by recall (worst first) and has no cell numbers.
READABLE_CLASSES = 30
#: Off-diagonal cells listed as the largest confusions.
LARGEST_CONFUSIONS = 20


def _from_json(ctx: RunContext, why: Unavailable) -> tuple[EvalResult, str]:
    from ..train.evaluate import EvalResult

    path = ctx.path / "evaluation.json"
    try:
        doc = json.loads(path.read_text())
        ev = EvalResult(
            doc["accuracy"],
            doc["loss"],
            doc["per_class"],
            doc["confusion"],
            doc["top_losses"],
            classes=list(doc["per_class"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        raise why from None
    return ev, f"The numbers are from {path} (`cnnlab evaluate` on {doc.get('data', '?')}), because {why}."


def result(ctx: RunContext) -> tuple[EvalResult, str, Unavailable | None]:
    """The evaluation, a note on where it comes from, and why it is not computed now (None when it is).

    Raises:
        Unavailable: Neither the model and data nor an ``evaluation.json`` are there.
    """
    try:
        return ctx.evaluation, "", None
    except Unavailable as exc:
        ev, note = _from_json(ctx, exc)
        return ev, note, exc


def confusion_order(confusion: list[list[int]]) -> list[int]:
    """Class order of the confusion figure: as is up to 30 classes, else by recall, lowest first."""
    n = len(confusion)
    if n <= READABLE_CLASSES:
        return list(range(n))
    recall = [row[i] / max(1, sum(row)) for i, row in enumerate(confusion)]
    return sorted(range(n), key=lambda i: (recall[i], i))


def largest_confusions(
    confusion: list[list[int]], classes: list[str], k: int
) -> list[tuple[str, str, int, str]]:
    """The ``k`` largest off-diagonal cells: (true, predicted, count, share of the true class)."""
    cells = [
        (count, i, j)
        for i, row in enumerate(confusion)
        for j, count in enumerate(row)
        if i != j and count > 0
    ]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [(classes[i], classes[j], c, f"{c / max(1, sum(confusion[i])):.1%}") for c, i, j in cells[:k]]


def _metrics(ev: EvalResult, spec: str, where: str) -> list[Block]:
    n = sum(int(m["support"]) for m in ev.per_class.values())
    macro_f1 = sum(m["f1"] for m in ev.per_class.values()) / max(1, len(ev.per_class))
    blocks: list[Block] = [Text(where)] if where else []
    blocks.append(
        Facts(
            (
                ("accuracy", f"{ev.accuracy:.2%} of {n:,} validation images ({spec})"),
                ("mean loss", f"{ev.loss:.4f}"),
                ("macro F1", f"{macro_f1:.3f}"),
            )
        )
    )
    rows = rows_of(
        (name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", int(m["support"]))
        for name, m in ev.per_class.items()
    )
    blocks.append(
        Table(
            ("class", "precision", "recall", "F1", "support"),
            rows,
            caption="per class (scikit-learn)",
            scroll=len(rows) > 40,
        )
    )
    return blocks


def _confusion(ev: EvalResult) -> list[Block]:
    from .plots import confusion_figure

    order = confusion_order(ev.confusion)
    matrix = [[ev.confusion[i][j] for j in order] for i in order]
    names = [ev.classes[i] for i in order]
    sort = "" if order == sorted(order) else "; classes sorted by recall, lowest first"
    numbers = "cells show counts" if len(names) <= READABLE_CLASSES else "no cell numbers past 30 classes"
    caption = (
        f"rows: true class, columns: predicted; colour: share of the true class (recall){sort}; {numbers}"
    )
    blocks: list[Block] = [
        figure_picture(
            confusion_figure(matrix, names, normalize=True),
            "the confusion matrix, normalised by true class",
            caption=caption,
        )
    ]
    top = largest_confusions(ev.confusion, ev.classes, LARGEST_CONFUSIONS)
    total = sum(1 for i, row in enumerate(ev.confusion) for j, c in enumerate(row) if i != j and c > 0)
    if top:
        blocks.append(
            Table(
                ("true", "predicted", "images", "of the true class"),
                rows_of(top),
                caption=f"the largest confusions: {shown_of(len(top), total, 'off-diagonal cells')}",
            )
        )
    else:
        blocks.append(Text("No confusion: every validation image is classified correctly."))
    return blocks


def _top_losses(ctx: RunContext, ev: EvalResult) -> list[Block]:
    if not ev.top_losses:
        return [Text("No top losses were asked for (top_losses = 0).")]
    ctx.require_images("top-loss gallery")
    if ctx.val.paths is not None:
        where = {p: i for i, p in enumerate(ctx.val.paths)}
        index = [where[t["path"]] for t in ev.top_losses]
    else:
        index = [int(t["index"]) for t in ev.top_losses]
    ex = explain_images(ctx, index)
    tiles = tuple(tile(ctx, ex, k, extra=(f"loss {t['loss']:.3f}",)) for k, t in enumerate(ev.top_losses))
    caption = (
        f"the {len(tiles)} validation images with the highest loss, highest first: each image, then the "
        f"{METHOD} overlay of its predicted class (layer {ex.layer}); true and predicted class with "
        "their probabilities"
    )
    return [Gallery(tiles, caption=caption)]


def evaluation_section(ctx: RunContext) -> Section:
    """Accuracy, per-class precision/recall/F1, the confusion matrix and the top losses with their CAM."""
    try:
        ev, note, why = result(ctx)
    except Unavailable as exc:
        return Section("evaluation", "Evaluation", [Missing(str(exc))])
    blocks = [*_metrics(ev, ctx.data_spec, note), *_confusion(ev)]
    if why is None:
        blocks += attempt(lambda: _top_losses(ctx, ev))
    else:
        blocks.append(Missing(f"no top-loss thumbnails: {why}"))
    return Section("evaluation", "Evaluation", blocks)
