"""Validation images with their Grad-CAM overlay and both probabilities, as gallery tiles.

Used by the evaluation (the top losses) and by "inside the network" (a few images per class): the image
itself, the overlay of the predicted class (:func:`cnnlab.interpret.explain`, drawn by
:func:`cnnlab.report.interpret_plots.overlays`) and the probability of the true and the predicted class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .context import RunContext, Unavailable
from .document import Tile, image_picture

if TYPE_CHECKING:
    import torch

#: The CAM method of the report's overlays.
METHOD = "gradcam"


@dataclass
class Explained:
    """Validation images run through the model, with the CAM of each predicted class.

    Attributes:
        index: Index of each image in the validation split.
        images: uint8 ``[N, C, H, W]`` as the model sees them.
        overlays: uint8 ``[N, 3, H, W]``: the CAM over the image.
        labels: True class per image (the run's class index).
        predicted: Predicted class per image.
        probs: ``[N, classes]`` class probabilities.
        layer: The layer the CAM was taken at.
    """

    index: list[int]
    images: torch.Tensor
    overlays: torch.Tensor
    labels: list[int]
    predicted: list[int]
    probs: torch.Tensor
    layer: str


def run_labels(ctx: RunContext, labels: torch.Tensor) -> list[int]:
    """Labels of the validation split as indices into the run's classes (the data's order may differ)."""
    classes, data_classes = ctx.loaded.classes, ctx.val.classes
    unknown = sorted(set(data_classes) - set(classes))
    if unknown:
        raise Unavailable(f"classes {', '.join(unknown[:5])} of {ctx.data_spec!r} are not among the run's")
    return [classes.index(data_classes[int(y)]) for y in labels]


def explain_images(ctx: RunContext, index: Sequence[int]) -> Explained:
    """Grad-CAM of the predicted class, and the probabilities, for validation images ``index``."""
    import torch

    from ..interpret import explain
    from ..train.evaluate import probabilities
    from .interpret_plots import overlays

    run, idx = ctx.loaded, [int(i) for i in index]
    images, labels = ctx.val.get_batch(torch.tensor(idx, dtype=torch.int64))
    res = explain(run.model, run.preprocess.normalize(images), method=METHOD)
    probs = probabilities(run, res.logits)
    return Explained(
        idx,
        images,
        overlays(images, res.maps),
        run_labels(ctx, labels),
        [int(t) for t in res.targets],
        probs,
        res.layer,
    )


def image_name(ctx: RunContext, i: int) -> tuple[str, str]:
    """(short name, full name) of validation image ``i``: its file name and path, or ``#index`` (IDX data)."""
    paths = ctx.val.paths
    if paths is None:
        return f"#{i}", f"validation image #{i}"
    return Path(paths[i]).name, str(paths[i])


def tile(ctx: RunContext, ex: Explained, k: int, *, extra: Sequence[str] = ()) -> Tile:
    """Tile ``k`` of ``ex``: the image, its overlay, its name, true and predicted class with probabilities."""
    classes = ctx.loaded.classes
    t, p = ex.labels[k], ex.predicted[k]
    short, full = image_name(ctx, ex.index[k])
    verdict = "correct" if t == p else "wrong"
    lines = (
        short,
        f"true {classes[t]}: {float(ex.probs[k, t]):.1%}",
        f"predicted {classes[p]}: {float(ex.probs[k, p]):.1%}",
        *extra,
    )
    pictures = (
        image_picture(ex.images[k], f"{full}, true class {classes[t]}"),
        image_picture(ex.overlays[k], f"{METHOD} of {classes[p]} over {full} ({verdict})"),
    )
    return Tile(pictures, lines, title=full, wrong=t != p)
