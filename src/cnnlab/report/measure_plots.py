"""Figures of the course's measurements: linear-probe accuracy by depth, the embedding map, and
accuracy under shifts and rotations (one curve per run).

Each function takes what :mod:`cnnlab.interpret.probe` / :mod:`cnnlab.interpret.invariance` return and
builds a ``matplotlib.figure.Figure`` directly (no pyplot); save it with :func:`cnnlab._io.save_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .grids import finish_grid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..interpret.invariance import InvarianceCurve
    from ..interpret.probe import ProbeResult

__all__ = ["embedding_map_figure", "invariance_figure", "probe_figure"]


def _short(name: str) -> str:
    return name.removeprefix("features.")


def probe_figure(result: ProbeResult, *, title: str = "") -> Figure:
    """Validation (and training) accuracy of a linear probe at each depth, with the chance level.

    Args:
        result: From :func:`cnnlab.interpret.probe.probe_run`.
        title: Figure title (default: says what was probed).

    Returns:
        The figure (one panel).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5.5, 1.1 * len(result.stages) + 2), 4.2))
    ax = fig.subplots()
    x = np.arange(len(result.stages))
    ax.plot(x, result.val_accuracy, "o-", color="tab:blue", label="validation accuracy")
    ax.plot(x, result.train_accuracy, "s--", color="tab:blue", alpha=0.45, label="training accuracy")
    for i, acc in enumerate(result.val_accuracy):
        ax.annotate(f"{acc:.1%}", (x[i], acc), textcoords="offset points", xytext=(0, 8), ha="center",
                    fontsize=8)
    ax.axhline(result.chance, color="grey", ls=":", label=f"chance ({result.chance:.0%})")
    labels = [f"{_short(s)}\n{d} features" for s, d in zip(result.stages, result.dims, strict=True)]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("depth (each stage's output, global-average-pooled)")
    ax.set_ylabel("linear probe accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return finish_grid(fig, title or "linear probes by depth: deeper stages separate the classes linearly",
                       fontsize=11)


def _scatter(ax: Any, points: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> None:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for c, name in enumerate(classes):
        mask = labels == c
        if mask.any():
            ax.scatter(points[mask, 0], points[mask, 1], s=6, color=cmap(c % cmap.N), label=name, alpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])


def embedding_map_figure(result: ProbeResult, *, title: str = "") -> Figure:
    """The last probed embedding of the validation images in 2-D: PCA and (when computed) t-SNE.

    Args:
        result: From :func:`cnnlab.interpret.probe.probe_run`.
        title: Figure title (default: names the embedding).

    Returns:
        The figure: one panel per map, points coloured by class, one legend.
    """
    from matplotlib.figure import Figure

    maps = [("PCA", result.pca, f"PCA: the 2 largest directions ({result.pca_variance:.0%} of the variance)")]
    if result.tsne is not None:
        maps.append(("t-SNE", result.tsne, "t-SNE (neighbours kept; distances between clusters are not)"))
    fig = Figure(figsize=(5.2 * len(maps) + 1.6, 5.0))
    axes = np.atleast_1d(fig.subplots(1, len(maps)))
    for ax, (_, points, subtitle) in zip(axes, maps, strict=True):
        _scatter(ax, points, result.map_labels, result.classes)
        ax.set_title(subtitle, fontsize=8)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", fontsize=8, markerscale=2.5)
    last = result.stages[-1]
    default = (f"{_short(last)} ({result.dims[-1]} features) of {len(result.map_labels)} validation images, "
               "coloured by class")
    return finish_grid(fig, title or default, fontsize=11)


def invariance_figure(curves: Sequence[InvarianceCurve], *, title: str = "") -> Figure:
    """Accuracy against input shift (pixels) and rotation (degrees), one curve per run.

    Args:
        curves: From :func:`cnnlab.interpret.invariance.measure_invariance`, one per run.
        title: Figure title.

    Returns:
        The figure: shift panel, rotation panel, chance level on both.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.4))
    ax_shift, ax_rot = fig.subplots(1, 2)
    for curve in curves:
        label = f"{curve.model} ({curve.label})"
        kept = curve.shift_accuracy[-1] / curve.shift_accuracy[0] if curve.shift_accuracy[0] else 0.0
        shift_label = f"{label}: keeps {kept:.0%} at {curve.shifts[-1]} px"
        (line,) = ax_shift.plot(curve.shifts, curve.shift_accuracy, "o-", label=shift_label)
        ax_rot.plot(curve.angles, curve.rotation_accuracy, "o-", color=line.get_color(), label=label)
    chance = max((c.chance for c in curves), default=0.0)
    for ax, xlabel in ((ax_shift, "shift (pixels; mean of left, right, up, down)"),
                       (ax_rot, "rotation (degrees; mean of both directions)")):
        ax.axhline(chance, color="grey", ls=":", label=f"chance ({chance:.0%})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    if curves:
        ax_shift.set_xticks(curves[0].shifts)
    ax_shift.set_title("translation", fontsize=9)
    ax_rot.set_title("rotation", fontsize=9)
    ax_shift.legend(fontsize=8, loc="lower left")
    ax_rot.legend(fontsize=8, loc="lower left")
    images = sorted({c.images for c in curves})
    default = f"accuracy on moved validation images ({', '.join(map(str, images))} images per point)"
    return finish_grid(fig, title or default, fontsize=11)
