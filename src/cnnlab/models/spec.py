"""A compact layer spec -> a :class:`~cnnlab.models.base.CNNLabModel` (users define their own nets).

A spec is a list of layer dataclasses, or the same as a string::

    from cnnlab.models.spec import Conv, MaxPool, ReLU, Head, build_from_spec

    net = build_from_spec([Conv(32, 3), ReLU(), MaxPool(2), Conv(64, 3), ReLU()],
                          head=Head("gap"), input_size=(1, 28, 28), num_classes=10)
    net = build_from_spec("conv:32:3 relu maxpool:2 conv:64:3 relu", head="gap",
                          input_size=(1, 28, 28), num_classes=10)   # the same network

String grammar: layers separated by spaces; ``kind:arg:arg:key=value``. Kinds (see :data:`SPEC_LAYERS`):
``conv:OUT:K[:stride=S][:padding=P|same][:dilation=D][:bias=0]``, ``maxpool:K[:stride=S][:padding=P]``,
``avgpool:K...``, ``bn``, ``relu``, ``dropout:P``, ``res:OUT[:stride=S]`` (residual block, 1x1
projection when shapes change), ``fact:OUT:N`` (1xN then Nx1 conv), ``fixed:BANK[:key=value...]`` (a
:class:`cnnlab.filters.FixedFilterConv2d` from a filter bank, e.g. ``fixed:gabor:thetas=4``) and
``inception(BRANCH | BRANCH ...)`` where a branch is layers separated by commas, e.g.
``inception(conv:16:1 | conv:16:1,conv:24:3:padding=1 | maxpool:3:stride=1:padding=1,conv:8:1)``.

The features are grouped into blocks: each conv-like layer (conv, res, fact, fixed, inception) opens a
new block ``features.blockN`` holding it and the layers that follow it (bn, relu, pool, dropout). Those
block names are the model's ``blocks`` (for partial fine-tuning); the default CAM layer is the last
layer of the last block that keeps a spatial map (its ReLU when it has one).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ModelError
from .base import CNNLabModel
from .blocks import FactorisedConv, InceptionBlock, ResidualBlock

SPEC_LAYERS: dict[str, type] = {}


def register_spec_layer(kind: str) -> Callable[[type], type]:
    """Register a spec layer dataclass under ``kind`` (its ``build(in_channels) -> (module, out_channels)``).

    Raises:
        ModelError: ``kind`` is already registered.
    """

    def deco(cls: type) -> type:
        if kind in SPEC_LAYERS:
            raise ModelError(f"spec layer kind {kind!r} is already registered")
        SPEC_LAYERS[kind] = cls
        cls.kind = kind  # type: ignore[attr-defined]
        return cls

    return deco


@register_spec_layer("conv")
@dataclass
class Conv:
    """2-D convolution (no activation: add ``ReLU()`` after it, as Keras' layers are listed)."""

    out: int
    kernel: int = 3
    stride: int = 1
    padding: int | str = 0
    dilation: int = 1
    bias: bool = True
    opens_block = True

    def build(self, c: int) -> tuple[nn.Module, int]:
        return nn.Conv2d(
            c,
            self.out,
            self.kernel,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=self.bias,
        ), self.out


@dataclass
class _Pool:
    kernel: int = 2
    stride: int | None = None
    padding: int = 0
    opens_block = False


@register_spec_layer("maxpool")
@dataclass
class MaxPool(_Pool):
    """Max pooling (stride defaults to the kernel)."""

    def build(self, c: int) -> tuple[nn.Module, int]:
        return nn.MaxPool2d(self.kernel, stride=self.stride, padding=self.padding), c


@register_spec_layer("avgpool")
@dataclass
class AvgPool(_Pool):
    """Average pooling (stride defaults to the kernel)."""

    def build(self, c: int) -> tuple[nn.Module, int]:
        return nn.AvgPool2d(self.kernel, stride=self.stride, padding=self.padding), c


@register_spec_layer("bn")
@dataclass
class BatchNorm:
    """Batch normalisation over channels."""

    opens_block = False

    def build(self, c: int) -> tuple[nn.Module, int]:
        return nn.BatchNorm2d(c), c


@register_spec_layer("relu")
@dataclass
class ReLU:
    """Rectified linear unit."""

    opens_block = False

    def build(self, c: int) -> tuple[nn.Module, int]:
        return nn.ReLU(), c


@register_spec_layer("dropout")
@dataclass
class Dropout:
    """Dropout of whole activations with probability ``p``."""

    p: float = 0.5
    opens_block = False

    def build(self, c: int) -> tuple[nn.Module, int]:
        return nn.Dropout(self.p), c


@register_spec_layer("res")
@dataclass
class Residual:
    """Residual basic block (see :class:`~cnnlab.models.blocks.ResidualBlock`)."""

    out: int
    stride: int = 1
    kernel: int = 3
    opens_block = True

    def build(self, c: int) -> tuple[nn.Module, int]:
        return ResidualBlock(c, self.out, stride=self.stride, kernel_size=self.kernel), self.out


@register_spec_layer("fact")
@dataclass
class Factorised:
    """Factorised convolution: 1 x n then n x 1."""

    out: int
    n: int = 3
    padding: str = "same"
    opens_block = True

    def build(self, c: int) -> tuple[nn.Module, int]:
        return FactorisedConv(c, self.out, self.n, padding=self.padding), self.out


@register_spec_layer("inception")
@dataclass
class Inception:
    """Parallel branches (each a list of spec layers) concatenated along channels."""

    branches: list[list[Any]]
    opens_block = True

    def build(self, c: int) -> tuple[nn.Module, int]:
        mods, total = [], 0
        for branch in self.branches:
            layers, out = [], c
            for layer in branch:
                m, out = layer.build(out)
                layers.append(m)
            mods.append(nn.Sequential(*layers))
            total += out
        return InceptionBlock(mods), total


@register_spec_layer("fixed")
@dataclass
class Fixed:
    """A conv layer whose kernels come from a filter bank (``cnnlab.filters.FixedFilterConv2d``)."""

    bank: str
    trainable: bool = False
    padding: int | str = "same"
    params: dict[str, Any] = field(default_factory=dict)
    opens_block = True

    def build(self, c: int) -> tuple[nn.Module, int]:
        from ..filters import FixedFilterConv2d  # lazy: the filters package is optional for models

        layer = FixedFilterConv2d.from_bank(
            self.bank,
            in_channels=c,
            trainable=self.trainable,
            padding=self.padding,  # type: ignore[arg-type]
            **self.params,
        )
        return layer, layer.out_channels


@dataclass
class Head:
    """Classifier head: ``pool`` then optional hidden dense layer (+ReLU), dropout, output dense.

    Attributes:
        pool: "flatten" (Keras ``Flatten``), "gap" (global average pooling) or "none" (no classifier:
            the model returns its feature maps, like the course's convolutional base).
        hidden: Units of the hidden dense layer (None = no hidden layer).
        dropout: Dropout probability right before the output dense layer (0 = none).
    """

    pool: Literal["flatten", "gap", "none"] = "gap"
    hidden: int | None = None
    dropout: float = 0.0


# ----------------------------------------------------------------------------------------------- parsing


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def _split_top(text: str, seps: str) -> list[str]:
    """Split at characters in ``seps`` that are not inside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            raise ModelError(f"spec {text!r}: unbalanced ')'")
        if ch in seps and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ModelError(f"spec {text!r}: unbalanced '('")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _parse_token(tok: str) -> Any:
    m = re.fullmatch(r"inception\((.*)\)", tok, flags=re.S)
    if m:
        branches = [[_parse_token(t) for t in _split_top(b, ", \n\t")] for b in _split_top(m.group(1), "|")]
        return Inception(branches)
    kind, *args = tok.split(":")
    cls = SPEC_LAYERS.get(kind)
    if cls is None:
        raise ModelError(f"spec layer {tok!r}: unknown kind {kind!r}; use one of {', '.join(SPEC_LAYERS)}")
    pos = [_value(a) for a in args if "=" not in a]
    kw = {k: _value(v) for k, v in (a.split("=", 1) for a in args if "=" in a)}
    if cls is Fixed:
        reserved: dict[str, Any] = {k: kw.pop(k) for k in ("trainable", "padding") if k in kw}
        kw = {"params": kw, **reserved}
    try:
        return cls(*pos, **kw)
    except TypeError as exc:
        raise ModelError(f"spec layer {tok!r}: {exc}") from None


def parse_spec(spec: str | Sequence[Any]) -> list[Any]:
    """A spec string (or a list of layer dataclasses, returned as a list) -> layer dataclasses.

    Raises:
        ModelError: Unknown layer kind or bad arguments, naming the token.
    """
    if isinstance(spec, str):
        return [_parse_token(t) for t in _split_top(spec, " \n\t,")]
    return list(spec)


def is_spec(text: str) -> bool:
    """Does ``text`` read as a layer spec string (``"conv:32:3 relu"``) rather than a model name or a path?"""
    from pathlib import Path

    first = text.strip().split(None, 1)[0] if text.strip() else ""
    kind = first.split(":", 1)[0].split("(", 1)[0]
    return kind in SPEC_LAYERS and not Path(text).exists()


# ----------------------------------------------------------------------------------------------- building


class SpecNet(CNNLabModel):
    """A network built from a spec: ``features`` (blocks) then ``head``."""

    def __init__(self, features: nn.Sequential, head: nn.Sequential, *, cam_layer: str) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.default_cam_layer = cam_layer
        self.blocks = [f"features.{n}" for n, _ in features.named_children()]


def _unique(name: str, taken: dict[str, nn.Module]) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}{i}" in taken:
        i += 1
    return f"{name}{i}"


def _kind_name(layer: Any) -> str:
    return {"maxpool": "pool", "avgpool": "pool", "dropout": "drop"}.get(layer.kind, layer.kind)


def build_from_spec(
    spec: str | Sequence[Any],
    *,
    head: Head | str = "gap",
    input_size: tuple[int, int, int] = (3, 224, 224),
    num_classes: int = 10,
) -> SpecNet:
    """Build a network from a layer spec and a head.

    Args:
        spec: Layer dataclasses or a spec string (see the module docstring).
        head: A :class:`Head` or just its pool, "flatten" or "gap".
        input_size: (C, H, W); C is the first layer's input channels, H x W sizes a flatten head.
        num_classes: Outputs of the last dense layer (unused with head "none").

    Returns:
        The model.

    Raises:
        ModelError: Bad spec, or an input too small for the layers (naming the layer).
    """
    layers = parse_spec(spec)
    hd = Head(head) if isinstance(head, str) else head  # type: ignore[arg-type]
    if hd.pool not in ("flatten", "gap", "none"):
        raise ModelError(f"head {hd.pool!r}: use 'flatten', 'gap' or 'none'")
    blocks: OrderedDict[str, nn.Module] = OrderedDict()
    current: OrderedDict[str, nn.Module] | None = None
    c = input_size[0]
    for layer in layers:
        mod, c = layer.build(c)
        if getattr(layer, "opens_block", False) or current is None:
            current = OrderedDict()
            blocks[f"block{len(blocks) + 1}"] = current  # type: ignore[assignment]
        current[_unique(_kind_name(layer), current)] = mod
    features = nn.Sequential(OrderedDict((k, nn.Sequential(v)) for k, v in blocks.items()))  # type: ignore[arg-type]
    last_block = list(blocks)[-1] if blocks else None
    cam = "features"
    if last_block is not None:
        names = [
            n
            for n, m in features.get_submodule(last_block).named_children()
            if not isinstance(m, (nn.Dropout,))
        ]
        relus = [n for n in names if n.startswith("relu")]
        cam = f"features.{last_block}.{(relus or names)[-1]}"
    if hd.pool == "none":
        return SpecNet(features, nn.Sequential(), cam_layer=cam)
    if hd.pool == "flatten":
        with torch.no_grad():
            try:
                n_in = features(torch.zeros(1, *input_size)).flatten(1).shape[1]
            except RuntimeError as exc:
                raise ModelError(f"spec: input {input_size} is too small for the layers ({exc})") from None
        pool: nn.Module = nn.Flatten()
    else:
        n_in = c
        pool = nn.Sequential(OrderedDict(avg=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten()))
    hmods: OrderedDict[str, nn.Module] = OrderedDict([("flatten" if hd.pool == "flatten" else "pool", pool)])
    if hd.hidden:
        hmods["fc1"] = nn.Linear(n_in, hd.hidden)
        hmods["relu"] = nn.ReLU()
        n_in = hd.hidden
    if hd.dropout:
        hmods["drop"] = nn.Dropout(hd.dropout)
    hmods["fc"] = nn.Linear(n_in, num_classes)
    return SpecNet(features, nn.Sequential(hmods), cam_layer=cam)
