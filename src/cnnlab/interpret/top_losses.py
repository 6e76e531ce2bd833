"""The highest-loss validation images of a run, seen: image, true and predicted class with their
probabilities, and where the network looked (Grad-CAM of the predicted class).

:func:`top_loss_gallery` takes the :class:`~cnnlab.train.evaluate.EvalResult` that ``evaluate`` returned
(its ``top_losses`` name the images by path or by index) and gathers what the gallery figure draws
(:func:`cnnlab.report.evaluation_plots.top_losses_figure`); it does not change the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import CnnlabError

if TYPE_CHECKING:
    from ..data import ImageTensorDataset
    from ..runfolder.folder import LoadedRun
    from ..train.evaluate import EvalResult

__all__ = ["TopLossGallery", "top_loss_gallery"]


@dataclass
class TopLossGallery:
    """The top-loss images of an evaluation and what to say about each.

    Attributes:
        images: uint8 [k, C, H, W], highest loss first.
        where: The file of each image, or ``"#<index>"`` in the split (IDX data).
        labels: True class names.
        predicted: Predicted class names.
        p_label: Probability the model gave the true class.
        p_predicted: Probability of the predicted class.
        losses: Loss of each image.
        cams: [k, H, W] Grad-CAM of the predicted class in [0, 1], or None (see ``cam_note``).
        cam_layer: The layer the CAM was taken at.
        cam_note: Why there is no CAM (e.g. a model without convolutions), else None.
    """

    images: torch.Tensor
    where: list[str]
    labels: list[str]
    predicted: list[str]
    p_label: list[float]
    p_predicted: list[float]
    losses: list[float]
    cams: torch.Tensor | None = None
    cam_layer: str | None = None
    cam_note: str | None = None


def _index(record: dict[str, object], dataset: ImageTensorDataset) -> int:
    if "index" in record:
        return int(record["index"])  # type: ignore[call-overload]
    assert dataset.paths is not None, "a top loss named by path comes from a dataset with paths"
    return dataset.paths.index(str(record["path"]))


def top_loss_gallery(run: LoadedRun, dataset: ImageTensorDataset, result: EvalResult, *,
                     method: str = "gradcam") -> TopLossGallery:
    """What the top-loss gallery shows for ``result.top_losses`` of ``run`` on ``dataset``.

    Args:
        run: The evaluated run.
        dataset: The dataset ``result`` was computed on.
        result: From :func:`cnnlab.train.evaluate.evaluate`.
        method: CAM method (a name in :data:`cnnlab.interpret.CAM_METHODS`).

    Returns:
        A :class:`TopLossGallery` (empty when ``result`` lists no top losses).
    """
    from ..train.evaluate import probabilities
    from .cam import explain

    index = [_index(r, dataset) for r in result.top_losses]
    images = dataset.images[torch.tensor(index, dtype=torch.int64)] if index else dataset.images[:0]
    x = run.preprocess.normalize(images)
    with torch.inference_mode():
        probs = probabilities(run, run.model(x).float()) if index else torch.zeros(0, len(run.classes))
    label_idx = [run.classes.index(str(r["label"])) for r in result.top_losses]
    pred_idx = [run.classes.index(str(r["predicted"])) for r in result.top_losses]
    gallery = TopLossGallery(
        images=images, where=[str(r.get("path", f"#{r.get('index')}")) for r in result.top_losses],
        labels=[run.classes[i] for i in label_idx], predicted=[run.classes[i] for i in pred_idx],
        p_label=[float(probs[n, i]) for n, i in enumerate(label_idx)],
        p_predicted=[float(probs[n, i]) for n, i in enumerate(pred_idx)],
        losses=[float(r["loss"]) for r in result.top_losses],  # type: ignore[arg-type]
    )
    if not index:
        return gallery
    if not any(isinstance(m, nn.Conv2d) for m in run.model.modules()):
        gallery.cam_note = "no CAM: the model has no convolution layer"
        return gallery
    try:
        cam = explain(run.model, x, target=torch.tensor(pred_idx), method=method)
    except CnnlabError as exc:  # a model CAM cannot explain: the gallery still shows the images
        gallery.cam_note = f"no CAM: {exc}"
        return gallery
    gallery.cams, gallery.cam_layer = cam.maps, f"{cam.method} of the predicted class at {cam.layer}"
    return gallery
