"""Model registry, course CNNs, the zoo and the model contract.

``create_model(name, *, num_classes=None, in_chans=None, pretrained=False)`` builds any registered model
(``list_models()``) or ``"timm:<name>"``; every model follows :class:`~cnnlab.models.base.ModelContract`.
"""

from __future__ import annotations

from ._registry import create_model, list_models, model_info, register_model
from ._weights import PretrainedCfg, imagenet_classes
from .base import CNNLabModel, ModelContract

__all__ = [
    "CNNLabModel",
    "ModelContract",
    "PretrainedCfg",
    "create_model",
    "imagenet_classes",
    "list_models",
    "model_info",
    "register_model",
]
