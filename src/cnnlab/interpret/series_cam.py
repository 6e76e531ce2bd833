"""Class activation maps along time: which samples of a series made a 1-D convnet decide.

Wang, Yan & Oates (2017) drew CAM on series: with a GAP + dense head the class score is a weighted sum
of the last convolution's maps, so those weights say where in time the class was found. Here any
method of :data:`cnnlab.interpret.cam.CAM_METHODS` but Score-CAM works (:mod:`cnnlab.interpret.cam`
handles ``[N, C, L]`` inputs); this module picks the series to explain and records the result.

What ``cnnlab explain RUN SERIES...`` accepts (:func:`cnnlab.data.series.read_series_inputs`):

* ``ucr:NAME`` (or ``series:FILE``): a few series of each class of its validation split (the archive's
  TEST split): the first ``per_class`` of every class;
* ``ucr:NAME:I``: the I-th series of that split (0-based), with its true class;
* a ``.npy`` ([L] or [C, L]) or ``.csv``/``.txt`` file (one row or one column of numbers): one series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import DataError

if TYPE_CHECKING:
    from ..source import ModelSource
    from .targets import Target

__all__ = ["SeriesCams", "explain_series", "is_series_source"]


@dataclass
class SeriesCams:
    """Class activation maps of a batch of series, with what a figure or ``--json`` needs.

    Attributes:
        series: float [N, C, L] the series as given (before normalisation: what is drawn).
        maps: [N, L] in [0, 1], one value per sample.
        names: Where each series came from (``ucr:GunPoint:3``, a file).
        labels: The true class (index into ``classes``) where known, else None.
        targets: The class explained (the predicted one unless a target was given).
        predicted: The predicted class.
        probabilities: The model's probability of the explained class.
        classes: Class names of the model.
        method: CAM method.
        layer: Layer the maps were taken from.
        weights: ``trained``, ``pretrained`` or ``random`` (the figure's title says random weights).
    """

    series: torch.Tensor
    maps: torch.Tensor
    names: list[str]
    labels: list[int | None]
    targets: list[int]
    predicted: list[int]
    probabilities: list[float]
    classes: list[str]
    method: str
    layer: str
    weights: str = "trained"

    def records(self) -> list[dict[str, Any]]:
        """One ``--json`` record per series: source, true/explained/predicted class, peak sample."""
        out = []
        for i, name in enumerate(self.names):
            label = self.labels[i]
            out.append({
                "series": name,
                "label": self.classes[label] if label is not None else None,
                "target": self.targets[i],
                "class": self.classes[self.targets[i]],
                "predicted": self.classes[self.predicted[i]],
                "probability": round(self.probabilities[i], 6),
                "peak_sample": int(self.maps[i].argmax()),
            })
        return out


def is_series_source(src: ModelSource) -> bool:
    """Does the model take series ((C, L) inputs) rather than images?"""
    return len(src.image_size) == 2


def explain_series(
    src: ModelSource,
    items: list[str],
    *,
    method: str = "gradcam",
    layer: str = "auto",
    target: Target = None,
    per_class: int = 3,
) -> SeriesCams:
    """Class activation maps along time for the series ``items`` name, with the model ``src``.

    Args:
        src: A series model (a run folder of ``fcn1d``, ``resnet1d``, a 1-D spec, ...).
        items: What :func:`cnnlab.data.series.read_series_inputs` reads.
        method: A CAM method (not ``scorecam``).
        layer: ``"auto"`` (the model's default CAM layer) or a layer name.
        target: Class to explain (None: the predicted class).
        per_class: Series per class for a bare data SPEC.

    Returns:
        The maps and everything a figure or ``--json`` shows.

    Raises:
        DataError: Series whose channels differ from the model's.
    """
    from ..data.series import read_series_inputs
    from .cam import explain
    from .metrics import target_probability

    series, names, truths = read_series_inputs(items, per_class=per_class)
    channels = int(src.image_size[0])
    if series.shape[1] != channels:
        raise DataError(f"the series have {series.shape[1]} channel(s), {src.label} takes {channels}; "
                        "give series of the kind it was trained on")
    device = next(src.model.parameters()).device
    x = src.preprocess.normalize(series.to(device))
    res = explain(src.model, x, target=target, layer=layer, method=method)
    probs = target_probability(res.logits, res.targets)
    binary = (res.logits.reshape(-1) > 0).long()
    predicted = (binary if src.binary else res.logits.argmax(1)).tolist()
    labels = [src.classes.index(t) if t is not None and t in src.classes else None for t in truths]
    return SeriesCams(series.cpu(), res.maps.cpu(), names, labels, [int(t) for t in res.targets],
                      [int(p) for p in predicted], [float(p) for p in probs], list(src.classes), res.method,
                      res.layer, src.weights)
