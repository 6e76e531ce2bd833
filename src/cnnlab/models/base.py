"""The model contract every cnnlab model follows (DESIGN.md, "Model contract").

Transfer learning, summaries and CAM use only this contract, so they need no per-model code:

* ``features``: the convolutional part (an ``nn.Module``); ``forward_features(x)`` runs it.
* ``head``: the classifier; ``forward_head(f)`` turns features into logits.
* ``reset_classifier(num_classes)``: replaces the last linear layer (new, trainable).
* ``default_cam_layer``: dotted module name (``model.get_submodule(name)``) of the layer whose
  activations CAM methods use by default — the last spatial feature map.
* ``pretrained_cfg``: the preprocessing of the weights it carries (mean/std/input size/classes),
  or ``None`` when it was built from scratch.
* ``blocks``: ordered dotted names of the backbone's stages, shallow to deep, for partial
  fine-tuning (``--unfreeze N`` unfreezes the last N); empty when unknown.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from . import surgery
from ._weights import PretrainedCfg


@runtime_checkable
class ModelContract(Protocol):
    """What every cnnlab model exposes (structural type; see the module docstring)."""

    features: nn.Module
    head: nn.Module
    default_cam_layer: str
    pretrained_cfg: PretrainedCfg | None
    blocks: list[str]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, f: torch.Tensor) -> torch.Tensor: ...

    def reset_classifier(self, num_classes: int) -> None: ...


class CNNLabModel(nn.Module):
    """Base class: ``forward(x) = forward_head(forward_features(x))``.

    Subclasses set ``features``, ``head``, ``default_cam_layer`` and, where known, ``blocks``. The head
    edits (``classifier_layer``, ``reset_classifier``) are :mod:`cnnlab.models.surgery`'s.

    Attributes:
        plain_forward_head: True when ``forward_head(f)`` is ``head(f)`` (set per subclass): the
            embedding cache may then split the head (:func:`~cnnlab.models.surgery.split_head`).
    """

    features: nn.Module
    head: nn.Module
    default_cam_layer: str = "features"
    pretrained_cfg: PretrainedCfg | None = None
    blocks: list[str]
    plain_forward_head: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.plain_forward_head = cls.forward_head is CNNLabModel.forward_head

    def __init__(self) -> None:
        super().__init__()
        self.blocks = []

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Run the convolutional part."""
        return self.features(x)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        """Turn feature maps into logits."""
        return self.head(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def classifier_layer(self) -> nn.Linear:
        """The last ``nn.Linear`` of the head (the one ``reset_classifier`` replaces).

        Raises:
            ModelError: A convolutional base without a classifier.
        """
        return surgery.classifier_layer(self)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last linear layer of the head with a fresh one of ``num_classes`` outputs."""
        surgery.reset_classifier(self, num_classes)


def input_rank(model: nn.Module) -> int | None:
    """Dimensions of one input: 2 ([C, L]) for a 1-D convnet, 3 ([C, H, W]) for an image model.

    Read from the first convolution (None for a model without one).
    """
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))), None)
    return None if first is None else 2 if isinstance(first, nn.Conv1d) else 3
