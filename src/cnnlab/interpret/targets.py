"""Which class a CAM explains and how it is scored; shared by the CAM methods and the CAM metrics.

For binary models with one logit ``z`` (``cats_cnn``), class 1 is scored as ``z`` and class 0 as ``-z``
(the predicted class is ``z > 0``), as pytorch-grad-cam's ``BinaryClassifierOutputTarget`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ArgumentError

__all__ = ["CamInputs", "Target", "parse_target", "select_targets", "target_scores"]

Target = int | Sequence[int] | torch.Tensor | None


@dataclass
class CamInputs:
    """What a variant's :meth:`~cnnlab.interpret.cam.CamMethod.cam_weights` may use (all for one batch)."""

    model: nn.Module
    images: torch.Tensor  # [N, C, H, W] as given to the model
    layer: str  # resolved dotted name
    activations: torch.Tensor  # [N, K, h, w], detached
    gradients: torch.Tensor | None  # d score / d activations, [N, K, h, w] (None when not needed)
    targets: torch.Tensor  # [N] int64
    logits: torch.Tensor  # [N, classes] detached


def parse_target(text: str | None, classes: Sequence[str]) -> int | None:
    """The class a user names (a class name or an index) -> its index; None or "" -> None (the prediction).

    The one parser of ``cnnlab explain --target`` and the page's target field: the same text gets the
    same answer, or the same error, from both.

    Raises:
        ArgumentError: Neither a class name nor an index, or an index outside ``0..len(classes) - 1``.
    """
    if text is None or not text.strip():
        return None
    if text in classes:
        return list(classes).index(text)
    try:
        index = int(text)
    except ValueError:
        shown = ", ".join(classes[:10]) + (", …" if len(classes) > 10 else "")
        message = f"{text!r}: not a class name or index; classes: {shown}"
        raise ArgumentError(message, param="target") from None
    if not 0 <= index < len(classes):
        raise ArgumentError(f"{index}: the model has {len(classes)} classes; use 0..{len(classes) - 1}",
                            param="target")
    return index


def target_scores(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Score of each image's target class: the logit, or ``±z`` for a one-logit binary model."""
    if logits.shape[1] == 1:
        sign = torch.where(targets == 1, 1.0, -1.0).to(logits.dtype)
        return logits[:, 0] * sign
    return logits.gather(1, targets[:, None])[:, 0]


def select_targets(logits: torch.Tensor, target: Target) -> torch.Tensor:
    """The class to explain per image: ``target`` (one, or one per image) or, when None, the prediction."""
    n, classes = logits.shape
    n_classes = 2 if classes == 1 else classes
    if target is None:
        return (logits[:, 0] > 0).long() if classes == 1 else logits.argmax(1)
    t = torch.as_tensor(target, dtype=torch.long).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ArgumentError(
            f": got {t.numel()} targets for {n} images; give one, or one per image", param="target"
        )
    if bool(((t < 0) | (t >= n_classes)).any()):
        raise ArgumentError(
            f"{t.tolist()}: the model has {n_classes} classes; use 0..{n_classes - 1}", param="target"
        )
    return t.to(logits.device)
