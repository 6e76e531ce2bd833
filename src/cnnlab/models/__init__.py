"""Model registry, course CNNs, the zoo, the model contract and model surgery.

``create_model(name, *, num_classes=None, in_chans=None, pretrained=False)`` builds any registered model
(``list_models()``) or ``"timm:<name>"``; every model follows :class:`~cnnlab.models.base.ModelContract`.
Rooms: ``_registry`` (names -> builders, provider prefixes), ``_weights`` (pretrained sources and their
preprocessing), ``base`` (the contract), ``spec`` (a layer spec -> a network), ``course`` (the course
nets), ``zoo_torchvision`` / ``zoo_timm`` (the real-world architectures), ``blocks`` (residual,
inception, factorised; the heads surgery fits), ``surgery`` (the one place that edits a built model).

Names are imported lazily: ``import cnnlab.models`` does not load torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports
from ._registry import register_provider

# The built-in providers, imported by the registry on first use (in this order).
for _provider in ("spec", "course", "series", "zoo_torchvision", "zoo_timm"):
    register_provider(f"{__name__}.{_provider}")

_EXPORTS = {
    "CNNLabModel": "base",
    "ModelContract": "base",
    "PretrainedCfg": "_weights",
    "create_model": "_registry",
    "imagenet_classes": "_weights",
    "list_models": "_registry",
    "model_info": "_registry",
    "register_model": "_registry",
    "register_provider": "_registry",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
