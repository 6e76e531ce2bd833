"""torchvision's vgg16, resnet18, resnet50 and inception_v3 in the cnnlab contract.

The torchvision modules are regrouped (not copied or re-implemented) into ``features`` and ``head``, in
the order torchvision registers them, so torchvision's own state dicts map one-to-one in order onto
ours (:func:`~cnnlab.models._weights.translate_in_order`), and forward computes exactly what
torchvision's forward computes (tests compare outputs and torchinfo figures).

``inception_v3``: the auxiliary classifier is not built (``aux_logits=False``), its tensors are dropped
from pretrained state dicts, and ``forward`` returns the main logits only. torchvision's pretrained
inception rescales ImageNet-normalised input to mean=std=0.5 (``transform_input``); cnnlab records that
normalisation in the ``pretrained_cfg`` instead, so the eval transform feeds the weights what they expect.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ModelError
from ._registry import register_model
from ._weights import PretrainedCfg, imagenet_classes, translate_in_order
from .base import CNNLabModel
from .surgery import adapt_model

_DOWNLOAD = "torchvision download (ImageNet)"


class TorchvisionNet(CNNLabModel):
    """A torchvision classifier regrouped into ``features`` and ``head`` (same modules, same order)."""

    def __init__(
        self,
        features: nn.Sequential,
        head: nn.Sequential,
        *,
        cam_layer: str,
        blocks: list[str],
        arch: str,
        default_cfg: PretrainedCfg,
    ) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.default_cam_layer = cam_layer
        self.blocks = blocks
        self.arch = arch
        self.default_pretrained_cfg = default_cfg

    def load_upstream_state_dict(self, sd: dict[str, Any], *, what: str) -> None:
        """Load a state dict with torchvision's keys (an ``AuxLogits`` branch is ignored), strictly."""
        sd = {k: v for k, v in sd.items() if not k.startswith("AuxLogits.")}
        self.load_state_dict(translate_in_order(sd, self.state_dict(), what=what), strict=True)


def _weights_enum(arch: str) -> Any:
    from torchvision.models import get_model_weights

    return get_model_weights(arch).DEFAULT


def _cfg_from_weights(arch: str, source: str) -> PretrainedCfg:
    """Preprocessing of torchvision's DEFAULT weights, read from the weights' own transforms."""
    w = _weights_enum(arch)
    t = w.transforms()
    crop, resize = int(t.crop_size[0]), int(t.resize_size[0])
    mean, std = tuple(float(v) for v in t.mean), tuple(float(v) for v in t.std)
    if arch == "inception_v3":  # transform_input is off here; see the module docstring
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    return PretrainedCfg(
        source=source,
        mean=mean,
        std=std,
        input_size=(3, crop, crop),
        interpolation=str(t.interpolation.value),
        crop_pct=crop / resize,
        class_names=tuple(imagenet_classes()),
    )


#: The file name of torchvision's DEFAULT weights per architecture in the torch hub cache. Written out so
#: that `cnnlab models` need not import torchvision (as long again as importing torch); a test compares
#: it with ``torchvision.models.get_model_weights(arch).DEFAULT.url``, so a torchvision upgrade is caught.
DEFAULT_WEIGHT_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet50": "resnet50-11ad3fa6.pth",
    "vgg16": "vgg16-397923af.pth",
    "inception_v3": "inception_v3_google-0cc3c7bd.pth",
}


def _cached(arch: str) -> bool:
    """Are torchvision's DEFAULT weights for ``arch`` already in the torch hub cache (usable offline)?"""
    return (Path(torch.hub.get_dir()) / "checkpoints" / DEFAULT_WEIGHT_FILES[arch]).is_file()


def _upstream(arch: str, *, pretrained: bool) -> Any:
    from torchvision import models

    kwargs: dict[str, Any] = {}
    if arch == "inception_v3":
        kwargs = {"aux_logits": True, "transform_input": False, "init_weights": not pretrained}
    if not pretrained:
        if arch == "inception_v3":
            kwargs["aux_logits"] = False
        return models.get_model(arch, weights=None, **kwargs)
    try:
        m = models.get_model(arch, weights="DEFAULT", **kwargs)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError: no network
        raise ModelError(
            f"{arch}: cannot download torchvision's weights ({type(exc).__name__}); offline, pass a local "
            "file with `weights` FILE"
        ) from None
    if arch == "inception_v3":
        m.AuxLogits = None
        m.aux_logits = False
    return m


def _seq(m: nn.Module, names: list[str]) -> nn.Sequential:
    return nn.Sequential(OrderedDict((n, getattr(m, n)) for n in names))


def _finish(net: TorchvisionNet, *, pretrained: bool, num_classes: int, in_chans: int) -> None:
    if pretrained:
        net.pretrained_cfg = _cfg_from_weights(net.arch, f"torchvision:{net.arch}")
    adapt_model(net, num_classes=num_classes, in_chans=in_chans)


def _default_cfg(arch: str) -> PretrainedCfg:
    return dataclasses.replace(_cfg_from_weights(arch, "torchvision"), source="torchvision")


@register_model(
    "resnet18",
    family="torchvision",
    input_size=(3, 224, 224),
    num_classes=1000,
    pretrained=_DOWNLOAD,
    offline=lambda: _cached("resnet18"),
    weights_cfg=lambda: _default_cfg("resnet18"),
    description="ResNet-18 (11.7M params)",
)
def resnet18(*, num_classes: int = 1000, in_chans: int = 3, pretrained: bool = False) -> TorchvisionNet:
    """torchvision ResNet-18."""
    return _resnet("resnet18", num_classes=num_classes, in_chans=in_chans, pretrained=pretrained)


@register_model(
    "resnet50",
    family="torchvision",
    input_size=(3, 224, 224),
    num_classes=1000,
    pretrained=_DOWNLOAD,
    offline=lambda: _cached("resnet50"),
    weights_cfg=lambda: _default_cfg("resnet50"),
    description="ResNet-50 (25.6M params)",
)
def resnet50(*, num_classes: int = 1000, in_chans: int = 3, pretrained: bool = False) -> TorchvisionNet:
    """torchvision ResNet-50."""
    return _resnet("resnet50", num_classes=num_classes, in_chans=in_chans, pretrained=pretrained)


def _resnet(arch: str, *, num_classes: int, in_chans: int, pretrained: bool) -> TorchvisionNet:
    m = _upstream(arch, pretrained=pretrained)
    feats = _seq(m, ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"])
    head = nn.Sequential(OrderedDict(avgpool=m.avgpool, flatten=nn.Flatten(1), fc=m.fc))
    net = TorchvisionNet(
        feats,
        head,
        cam_layer="features.layer4",
        blocks=[f"features.layer{i}" for i in range(1, 5)],
        arch=arch,
        default_cfg=_default_cfg(arch),
    )
    _finish(net, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans)
    return net


@register_model(
    "vgg16",
    family="torchvision",
    input_size=(3, 224, 224),
    num_classes=1000,
    pretrained=_DOWNLOAD,
    offline=lambda: _cached("vgg16"),
    weights_cfg=lambda: _default_cfg("vgg16"),
    description="VGG-16 (138M params)",
)
def vgg16(*, num_classes: int = 1000, in_chans: int = 3, pretrained: bool = False) -> TorchvisionNet:
    """torchvision VGG-16; ``features`` regrouped into its five conv blocks (block1..block5)."""
    m = _upstream("vgg16", pretrained=pretrained)
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    cur: OrderedDict[str, nn.Module] = OrderedDict()
    for i, layer in enumerate(m.features):  # keep torchvision's indices as names: block5.29 = last ReLU
        cur[str(i)] = layer
        if isinstance(layer, nn.MaxPool2d):
            blocks[f"block{len(blocks) + 1}"] = nn.Sequential(cur)
            cur = OrderedDict()
    feats = nn.Sequential(blocks)
    last_relu = [n for n, mod in feats.named_modules() if isinstance(mod, nn.ReLU)][-1]
    head = nn.Sequential(OrderedDict(avgpool=m.avgpool, flatten=nn.Flatten(1), classifier=m.classifier))
    net = TorchvisionNet(
        feats,
        head,
        cam_layer=f"features.{last_relu}",
        blocks=[f"features.{b}" for b in blocks],
        arch="vgg16",
        default_cfg=_default_cfg("vgg16"),
    )
    _finish(net, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans)
    return net


_INCEPTION_FEATURES = [
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "maxpool1",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "maxpool2",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
]


@register_model(
    "inception_v3",
    family="torchvision",
    input_size=(3, 299, 299),
    num_classes=1000,
    pretrained=_DOWNLOAD,
    offline=lambda: _cached("inception_v3"),
    weights_cfg=lambda: _default_cfg("inception_v3"),
    description="Inception v3, 299x299, without the auxiliary head: 23.8M params (27.2M with it)",
)
def inception_v3(*, num_classes: int = 1000, in_chans: int = 3, pretrained: bool = False) -> TorchvisionNet:
    """torchvision Inception v3 without the auxiliary classifier; input 3x299x299."""
    m = _upstream("inception_v3", pretrained=pretrained)
    feats = _seq(m, _INCEPTION_FEATURES)
    head = nn.Sequential(OrderedDict(avgpool=m.avgpool, dropout=m.dropout, flatten=nn.Flatten(1), fc=m.fc))
    stages = [n for n in _INCEPTION_FEATURES if not n.startswith("maxpool")]
    net = TorchvisionNet(
        feats,
        head,
        cam_layer="features.Mixed_7c",
        blocks=[f"features.{s}" for s in stages],
        arch="inception_v3",
        default_cfg=_default_cfg("inception_v3"),
    )
    _finish(
        net,
        pretrained=pretrained,
        num_classes=num_classes,
        in_chans=in_chans,
    )
    return net
