"""Training figures: learning curves (with the overfitting onset marked) and confusion matrices.

Functions return matplotlib ``Figure`` objects; save them with :func:`cnnlab._io.save_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _centered_mean(values: Sequence[float], window: int) -> list[float]:
    half = window // 2
    return [
        sum(values[max(0, i - half) : i + half + 1]) / len(values[max(0, i - half) : i + half + 1])
        for i in range(len(values))
    ]


def overfitting_onset(
    val_loss: Sequence[float],
    train_loss: Sequence[float] | None = None,
    *,
    patience: int = 2,
    tol: float = 0.05,
    window: int | None = None,
) -> int | None:
    """The epoch (0-based index) where validation loss turns up for good, or ``None``.

    Validation loss on a small split is noisy, so the turn is read from its centred moving average
    (``window`` epochs): the onset is the epoch of that smoothed minimum, provided that the last
    ``patience`` epochs (at least ``patience`` after the minimum) all have a validation loss more
    than ``tol`` (relative) above it while the training loss (if given) kept falling. So a single
    bump, a flat noisy tail and a minimum at the last epochs (too early to tell) are not an onset,
    and validation and training loss rising together is divergence, not overfitting.

    Args:
        val_loss: Validation loss per epoch.
        train_loss: Training loss per epoch (same length), optional.
        patience: Epochs at the end that must all lie above the minimum.
        tol: Relative rise over the smoothed minimum that counts as real (5% by default: the
            epoch-to-epoch noise of a 200-image validation split is about 2-3%).
        window: Moving-average width; default 3, or 5 from 30 epochs on.

    Returns:
        The 0-based epoch index of the onset, or ``None`` when the curves do not show overfitting.
    """
    values = [float(v) for v in val_loss]
    if len(values) < patience + 1:
        return None
    width = window if window is not None else (3 if len(values) < 30 else 5)
    smooth = _centered_mean(values, max(1, width))
    best = min(range(len(smooth)), key=smooth.__getitem__)  # the first of equal minima
    if len(values) - 1 - best < patience:
        return None
    if not all(v > smooth[best] * (1.0 + tol) for v in values[-patience:]):
        return None
    if train_loss is not None and len(train_loss) == len(values) and not train_loss[-1] < train_loss[best]:
        return None
    return best


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in rows]


def loss_axis_limit(losses: Sequence[float], chance_loss: float | None = None) -> float | None:
    """The top of a readable loss axis, or ``None`` when every loss fits as it is.

    A diverging first epoch (a loss of 40 beside losses of 0.5) would flatten the rest of the curve
    into the axis. The axis keeps every loss up to 2.5 x the upper quartile and always the loss of a
    uniform guess (``chance_loss``, x 1.5); anything above is drawn at the top and marked.

    Args:
        losses: Every loss drawn on the axis.
        chance_loss: The loss of a uniform guess (ln of the number of classes), if known.

    Returns:
        The upper y limit when some loss lies above it, else None.
    """
    finite = [float(v) for v in losses if math.isfinite(float(v))]
    if not finite:
        return None
    ordered = sorted(finite)
    upper_quartile = ordered[min(len(ordered) - 1, (3 * len(ordered)) // 4)]
    cap = max(2.5 * upper_quartile, 1.5 * chance_loss if chance_loss else 0.0)
    return cap if max(finite) > cap else None


def curves_title(model: str, transfer: str, data: str) -> str:
    """The curves' title: the model, how it was trained (transfer mode) and on what data.

    Args:
        model: Registry name of the model.
        transfer: ``scratch``, ``features``, ``partial`` or ``full`` (a ``Transfer`` enum's value).
        data: The data spec (a long path keeps its last two parts).

    Returns:
        E.g. ``"mnist_cnn from scratch · data: sample"``.
    """
    mode = str(getattr(transfer, "value", transfer))
    how = {"scratch": "from scratch", "features": "transfer: features (frozen backbone, new head)",
           "partial": "transfer: partial (last blocks fine-tuned)", "full": "transfer: full fine-tune"}
    parts = data.replace("\\", "/").rstrip("/").split("/")
    short = "/".join(parts[-2:]) if len(parts) > 2 else data
    return f"{model} {how.get(mode, f'transfer: {mode}')} · data: {short}"


def curves_figure(
    rows: Sequence[Mapping[str, Any]], *, title: str = "", num_classes: int | None = None
) -> Figure:
    """Train/validation loss and accuracy per epoch, with the overfitting onset and the chance level marked.

    Args:
        rows: One mapping per epoch with ``epoch`` (1-based), ``train_loss``, ``train_acc``,
            ``val_loss`` and ``val_acc`` (the rows of ``metrics.csv``).
        title: Figure title.
        num_classes: Outputs of the model (1 = one-logit binary), to draw the chance level: accuracy
            1/K and the loss of a uniform guess, ln K (ln 2 for binary). None draws no chance level.

    Returns:
        A figure with two panels (loss, accuracy). A loss far above the rest (a diverging first epoch)
        is drawn at the top of a clipped axis, marked with a triangle and its value; the axis label says so.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [int(r["epoch"]) for r in rows]
    train_loss, val_loss = _column(rows, "train_loss"), _column(rows, "val_loss")
    k = None if num_classes is None else max(2, int(num_classes))
    chance_loss = math.log(k) if k else None
    cap = loss_axis_limit(train_loss + val_loss, chance_loss)
    shown = (lambda v: [min(x, cap) for x in v]) if cap is not None else (lambda v: v)
    ax_loss.plot(epochs, shown(train_loss), "o-", label="train loss")
    ax_loss.plot(epochs, shown(val_loss), "s-", label="validation loss")
    ax_acc.plot(epochs, _column(rows, "train_acc"), "o-", label="train accuracy")
    ax_acc.plot(epochs, _column(rows, "val_acc"), "s-", label="validation accuracy")
    if k is not None and chance_loss is not None:
        guess = f"uniform guess (ln {k} = {chance_loss:.2f})"
        ax_loss.axhline(chance_loss, color="grey", ls=":", label=guess)
        ax_acc.axhline(1.0 / k, color="grey", ls=":", label=f"chance ({1.0 / k:.0%})")
    loss_label = "loss"
    if cap is not None:
        for e, v in [(e, v) for e, v in zip(epochs * 2, train_loss + val_loss, strict=True) if v > cap]:
            ax_loss.plot([e], [cap], "^", color="tab:red", ms=8)
            ax_loss.annotate(f"{v:.3g}", (e, cap), textcoords="offset points", xytext=(6, -10), fontsize=7,
                             color="tab:red")
        ax_loss.set_ylim(0, cap * 1.05)
        loss_label = f"loss (axis clipped at {cap:.2f}; ▲ marks a larger loss)"
    onset = overfitting_onset(val_loss, train_loss)
    if onset is not None:
        for ax in (ax_loss, ax_acc):
            ax.axvline(
                epochs[onset],
                color="tab:red",
                linestyle="--",
                label=f"overfitting from epoch {epochs[onset]}",
            )
    if cap is None:  # from 0: a run at chance (loss 0.684-0.693) must not look like it learns
        top = max([v for v in train_loss + val_loss if math.isfinite(v)] + [chance_loss or 0.0, 1e-6])
        ax_loss.set_ylim(0, top * 1.08)
    ax_acc.set_ylim(0, 1.02)  # accuracy on its whole range, chance line included
    for ax, name in ((ax_loss, loss_label), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name, fontsize=10 if ax is ax_acc or cap is None else 8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if epochs:
            ax.set_xticks(epochs if len(epochs) <= 20 else epochs[:: max(1, len(epochs) // 10)])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.set_layout_engine("constrained")
    return fig


def confusion_figure(
    confusion: Sequence[Sequence[int]], classes: Sequence[str], *, normalize: bool = False
) -> Figure:
    """A confusion-matrix heatmap: rows are true classes, columns predicted classes.

    Args:
        confusion: Square matrix of counts, ``confusion[true][pred]``.
        classes: Class names (row/column labels).
        normalize: Colour by row fraction (recall) instead of counts; cells still show counts.

    Returns:
        The figure.
    """
    import numpy as np
    from matplotlib.figure import Figure

    matrix = np.asarray(confusion, dtype=np.float64)
    n = len(classes)
    size = max(4.0, 0.5 * n + 2.0)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    im = ax.imshow(shown, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = shown.max() / 2 if shown.size else 0
    if n <= 30:
        # counts sized to their cells: a 2x2 matrix gets large numbers, not 8 pt in 2-inch cells
        count_pt = float(np.clip(0.22 * 72 * (size - 1.5) / max(n, 1), 8, 28))
        for i in range(n):
            for j in range(n):
                color = "white" if shown[i, j] > threshold else "black"
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", color=color,
                        fontsize=count_pt)
    ax.set_title("confusion matrix")
    return fig


def compare_curves_figure(runs: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str = "") -> Figure:
    """Several runs' curves overlaid: validation (solid) and training (dashed) loss and accuracy per epoch.

    Args:
        runs: ``{run name: metrics rows}`` (the rows of each run's ``metrics.csv``); one colour per run.
        title: Figure title.

    Returns:
        A figure with two panels (loss, accuracy); the overfitting onset of a run is marked with a dot.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.2))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for k, (name, rows) in enumerate(runs.items()):
        colour = f"C{k % 10}"
        epochs = [int(r["epoch"]) for r in rows]
        val_loss, train_loss = _column(rows, "val_loss"), _column(rows, "train_loss")
        ax_loss.plot(epochs, val_loss, "-", color=colour, label=f"{name}: validation")
        ax_loss.plot(epochs, train_loss, "--", color=colour, alpha=0.6, label=f"{name}: training")
        ax_acc.plot(epochs, _column(rows, "val_acc"), "-", color=colour, label=f"{name}: validation")
        ax_acc.plot(epochs, _column(rows, "train_acc"), "--", color=colour, alpha=0.6,
                    label=f"{name}: training")
        onset = overfitting_onset(val_loss, train_loss)
        if onset is not None:
            ax_loss.plot([epochs[onset]], [val_loss[onset]], "o", color=colour, markersize=8,
                         markeredgecolor="tab:red", label=f"{name}: overfitting from epoch {epochs[onset]}")
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    return fig


def lr_find_figure(lrs: Sequence[float], losses: Sequence[float], suggestion: float) -> Figure:
    """The learning-rate finder's loss against learning rate (log axis), its suggestion marked.

    Args:
        lrs: Learning rates tried, one per step, increasing.
        losses: The smoothed training loss at each.
        suggestion: The suggested learning rate (the steepest descent of the loss).

    Returns:
        A one-panel figure.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(lrs, losses, "-", label="training loss (smoothed)")
    nearest = min(range(len(lrs)), key=lambda i: abs(math.log(lrs[i]) - math.log(suggestion)))
    ax.plot([lrs[nearest]], [losses[nearest]], "o", color="tab:red", ms=8,
            label=f"suggestion: lr = {suggestion:.3g} (steepest descent)")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("learning-rate finder")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
