"""Faithfulness of saliency maps: deletion and insertion curves (Petsiuk et al., RISE, 2018).

Pixels are ranked by saliency (most salient first). *Deletion* replaces the top ``f`` fraction of
pixels with a baseline and records the target probability: a faithful map makes it fall fast (low
AUC). *Insertion* starts from the baseline and puts the top pixels back: the probability should rise
fast (high AUC). Defaults follow RISE: deletion to zeros (in the model's input space, i.e. the mean
colour of normalised inputs), insertion from a blurred copy. Every masked image of every step runs
in batches of ``batch_size`` under ``no_grad``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlabError
from .targets import Target, select_targets, target_scores

__all__ = ["FaithfulnessCurves", "deletion_insertion", "target_probability"]

Baseline = Literal["zero", "blur"]


@dataclass
class FaithfulnessCurves:
    """Deletion and insertion curves of one saliency map per image.

    Attributes:
        fractions: [S+1] fraction of pixels deleted/inserted, 0 .. 1.
        deletion: [N, S+1] target probability as the most salient pixels are removed.
        insertion: [N, S+1] target probability as the most salient pixels are put back.
        deletion_auc: [N] area under the deletion curve (lower is better).
        insertion_auc: [N] area under the insertion curve (higher is better).
        targets: [N] the class scored.
    """

    fractions: torch.Tensor
    deletion: torch.Tensor
    insertion: torch.Tensor
    deletion_auc: torch.Tensor
    insertion_auc: torch.Tensor
    targets: torch.Tensor


def target_probability(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax probability of each target, or the sigmoid of the signed logit for one-logit models."""
    if logits.shape[1] == 1:
        return torch.sigmoid(target_scores(logits, targets))
    return logits.softmax(1).gather(1, targets[:, None])[:, 0]


def _baseline(images: torch.Tensor, kind: Baseline | torch.Tensor) -> torch.Tensor:
    if isinstance(kind, torch.Tensor):
        return kind.expand_as(images)
    if kind == "zero":
        return torch.zeros_like(images)
    if kind == "blur":
        from torchvision.transforms.v2.functional import gaussian_blur

        side = min(images.shape[-2:])
        k = max(3, (side // 8) | 1)  # odd kernel ~1/8 of the side (RISE: 11 px, sigma 5 at 224)
        return gaussian_blur(images, [k, k], [k / 2.2, k / 2.2])
    raise CnnlabError(f"baseline {kind!r}: use 'zero', 'blur' or a tensor")


def deletion_insertion(
    model: nn.Module,
    images: torch.Tensor,
    saliency: torch.Tensor,
    *,
    target: Target = None,
    steps: int = 20,
    deletion_baseline: Baseline | torch.Tensor = "zero",
    insertion_baseline: Baseline | torch.Tensor = "blur",
    batch_size: int = 64,
) -> FaithfulnessCurves:
    """Deletion and insertion curves and their AUCs for any saliency map.

    Args:
        model: Classifier returning logits.
        images: Preprocessed float images [N, C, H, W].
        saliency: [N, h, w] maps (resized bilinearly to H x W when smaller), any scale.
        target: Class per image (None = predicted on the intact image).
        steps: Number of steps between 0 and all pixels.
        deletion_baseline: What deleted pixels become ("zero", "blur" or a tensor).
        insertion_baseline: What the insertion curve starts from.
        batch_size: Images per forward pass.

    Returns:
        :class:`FaithfulnessCurves`.
    """
    if images.ndim != 4 or saliency.ndim != 3 or len(saliency) != len(images):
        raise CnnlabError(
            f"saliency {tuple(saliency.shape)}: expected [N, h, w] for images {tuple(images.shape)}"
        )
    n, _, h, w = images.shape
    if saliency.shape[-2:] != (h, w):
        up = F.interpolate(saliency[:, None].float(), size=(h, w), mode="bilinear", align_corners=False)
        saliency = up[:, 0]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            targets = select_targets(model(images), target)
            order = torch.sort(saliency.flatten(1), dim=1, descending=True, stable=True).indices
            rank = order.argsort(1).view(n, 1, h, w)  # rank[p] = position of pixel p in the order
            counts = torch.linspace(0, h * w, steps + 1).round()
            curves = []
            for kind, baseline in (("deletion", deletion_baseline), ("insertion", insertion_baseline)):
                base = _baseline(images, baseline)
                probs = torch.empty(n * (steps + 1))
                for start in range(0, len(probs), batch_size):  # (image, step) pairs, batched across images
                    pair = torch.arange(start, min(start + batch_size, len(probs)))
                    img, step = pair // (steps + 1), pair % (steps + 1)
                    top = (rank[img] < counts[step].view(-1, 1, 1, 1)).to(images.dtype)  # the top pixels
                    keep = 1 - top if kind == "deletion" else top
                    batch = images[img] * keep + base[img] * (1 - keep)
                    probs[pair] = target_probability(model(batch), targets[img]).float()
                probs = probs.view(n, steps + 1)
                curves.append(probs)
    finally:
        model.train(was_training)
    fractions = counts / (h * w)
    deletion, insertion = curves
    return FaithfulnessCurves(
        fractions,
        deletion,
        insertion,
        torch.trapezoid(deletion, fractions, dim=1),
        torch.trapezoid(insertion, fractions, dim=1),
        targets,
    )
