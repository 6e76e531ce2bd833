"""Training figures: learning curves (with the overfitting onset marked) and confusion matrices.

Functions return matplotlib ``Figure`` objects; save them with :func:`cnnlab._io.save_figure`.
"""

from __future__ import annotations

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


def curves_figure(rows: Sequence[Mapping[str, Any]], *, title: str = "") -> Figure:
    """Train/validation loss and accuracy per epoch, with the overfitting onset marked.

    Args:
        rows: One mapping per epoch with ``epoch`` (1-based), ``train_loss``, ``train_acc``,
            ``val_loss`` and ``val_acc`` (the rows of ``metrics.csv``).
        title: Figure title.

    Returns:
        A figure with two panels (loss, accuracy).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [int(r["epoch"]) for r in rows]
    train_loss, val_loss = _column(rows, "train_loss"), _column(rows, "val_loss")
    ax_loss.plot(epochs, train_loss, "o-", label="train loss")
    ax_loss.plot(epochs, val_loss, "s-", label="validation loss")
    ax_acc.plot(epochs, _column(rows, "train_acc"), "o-", label="train accuracy")
    ax_acc.plot(epochs, _column(rows, "val_acc"), "s-", label="validation accuracy")
    onset = overfitting_onset(val_loss, train_loss)
    if onset is not None:
        for ax in (ax_loss, ax_acc):
            ax.axvline(
                epochs[onset],
                color="tab:red",
                linestyle="--",
                label=f"overfitting from epoch {epochs[onset]}",
            )
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
        if epochs:
            ax.set_xticks(epochs if len(epochs) <= 20 else epochs[:: max(1, len(epochs) // 10)])
    if title:
        fig.suptitle(title)
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
        for i in range(n):
            for j in range(n):
                color = "white" if shown[i, j] > threshold else "black"
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", color=color, fontsize=8)
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
