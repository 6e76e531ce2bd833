"""The commands of ``cnnlab``, in the order of the work, with the one line ``cnnlab --help`` shows for each.

Data first, then training, evaluation, prediction and the views of a trained model, the report and the page,
then the tools of the course; each line is whole at 80 columns (click cuts a docstring's first sentence).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["COMMANDS", "command_line", "in_work_order"]

#: ``cnnlab --help``: the commands in the order of the work, each with its line (never cut at the width).
COMMANDS: dict[str, str] = {
    "data": "what a dataset holds: classes, splits, skipped files, grids",
    "train": "train a model and write a run folder; ends with the verdict",
    "evaluate": "accuracy, per-class scores, confusion, top losses, verdict",
    "predict": "the top classes of images",
    "explain": "class activation maps (Grad-CAM and friends) over images",
    "features": "feature maps of a layer for an image",
    "dream": "filter visualisation: what a filter responds to most",
    "report": "one HTML file: a run's whole story, or runs compared",
    "serve": "a web page: drop a photo, see the classes and why",
    "export": "the model as ONNX or TorchScript, checked by that runtime",
    "models": "the model registry, with offline weight availability",
    "summary": "shapes, parameters, mult-adds, receptive field per layer",
    "filters": "classical filter banks (Gabor, Sobel, Haar and more) over images",
    "rf": "the receptive field of a unit on the input",
    "arithmetic": "one conv/pool layer: grids and the output-size formula",
    "probe": "linear-probe accuracy by depth, embedding map",
    "invariance": "accuracy under input shifts and rotations",
    "demo": "all of the above on the embedded sample, offline",
}


def in_work_order(names: Iterable[str]) -> list[str]:
    """``names`` in the order of :data:`COMMANDS` (unknown names last, in their order)."""
    order = {name: i for i, name in enumerate(COMMANDS)}
    return sorted(names, key=lambda name: order.get(name, len(order)))


def command_line(name: str, help_text: str = "") -> str:
    """The line ``cnnlab --help`` shows for ``name``: its :data:`COMMANDS` line, else its help's first
    sentence."""
    if name in COMMANDS:
        return COMMANDS[name]
    first = " ".join(help_text.strip().split("\n\n")[0].split())
    return first.split(". ")[0].rstrip(".")
