"""A compact layer spec -> a :class:`~cnnlab.models.base.CNNLabModel` (users define their own nets).

A spec is a list of layer dataclasses, or the same as a string::

    from cnnlab.models.spec import Conv, MaxPool, ReLU, Head, build_from_spec

    net = build_from_spec([Conv(32, 3), ReLU(), MaxPool(2), Conv(64, 3), ReLU()],
                          head=Head("gap"), input_size=(1, 28, 28), num_classes=10)
    net = build_from_spec("conv:32:3 relu maxpool:2 conv:64:3 relu", head="gap",
                          input_size=(1, 28, 28), num_classes=10)   # the same network

The layer kinds live in :mod:`cnnlab.models.spec_layers` (re-exported here). String grammar: layers
separated by spaces; ``kind:arg:arg:key=value``. Kinds (see :data:`SPEC_LAYERS`):
``conv:OUT:K[:stride=S][:padding=P|same][:dilation=D][:bias=0]``, ``maxpool:K[:stride=S][:padding=P]``,
``avgpool:K...``, ``bn``, ``relu``, ``dropout:P``, ``res:OUT[:stride=S]`` (residual block, 1x1
projection when shapes change), ``fact:OUT:N`` (1xN then Nx1 conv), ``fixed:BANK[:key=value...]`` (a
:class:`cnnlab.filters.FixedFilterConv2d` from a filter bank, e.g. ``fixed:gabor:thetas=4``) and
``inception(BRANCH | BRANCH ...)`` where a branch is layers separated by commas, e.g.
``inception(conv:16:1 | conv:16:1,conv:24:3:padding=1 | maxpool:3:stride=1:padding=1,conv:8:1)``.

Series (1-D): ``conv1d:OUT:K[...]``, ``maxpool1d:K``, ``avgpool1d:K``, ``bn1d``, ``gap1d`` and ``res1d:OUT``
(the residual block of Wang et al. 2017) work along time on ``[B, C, L]`` inputs; their input size is
``(C, L)`` and their GAP head pools over time. A spec is either 1-D or 2-D (mixing them is refused).

The features are grouped into blocks: each conv-like layer (conv, res, fact, fixed, inception) opens a
new block ``features.blockN`` holding it and the layers that follow it (bn, relu, pool, dropout). Those
block names are the model's ``blocks`` (for partial fine-tuning); the default CAM layer is the last
layer of the last block that keeps a spatial map (its ReLU when it has one).
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ModelError
from ._registry import ModelEntry, register_pattern
from .base import CNNLabModel
from .spec_layers import (
    SPEC_LAYERS,
    AvgPool,
    AvgPool1d,
    BatchNorm,
    BatchNorm1d,
    Conv,
    Conv1d,
    Dropout,
    Factorised,
    Fixed,
    GlobalAvgPool1d,
    Head,
    Inception,
    MaxPool,
    MaxPool1d,
    ReLU,
    Residual,
    Residual1d,
    register_spec_layer,
)

__all__ = [
    "DEFAULT_INPUT",
    "SPEC_INPUT_SIZE",
    "SPEC_LAYERS",
    "SPEC_NUM_CLASSES",
    "AvgPool",
    "AvgPool1d",
    "BatchNorm",
    "BatchNorm1d",
    "Conv",
    "Conv1d",
    "Dropout",
    "Factorised",
    "Fixed",
    "GlobalAvgPool1d",
    "Head",
    "Inception",
    "MaxPool",
    "MaxPool1d",
    "ReLU",
    "Residual",
    "Residual1d",
    "SpecNet",
    "build_from_spec",
    "default_input_size",
    "is_spec",
    "parse_spec",
    "register_spec_layer",
    "spec_dims",
    "spec_entry",
]

#: What a layer spec is built for when nothing says otherwise (stated once: every command reads it from
#: the registry entry). Its head pools globally, so only the channels of the size matter to the network.
SPEC_INPUT_SIZE = (3, 224, 224)
SPEC_NUM_CLASSES = 10
#: The input a spec model gets when none is given, by its spatial axes: an RGB image, or a univariate series
#: of 128 samples (a 1-D spec: conv1d, ...).
DEFAULT_INPUT: dict[int, tuple[int, ...]] = {2: SPEC_INPUT_SIZE, 1: (1, 128)}


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
        layer = cls(*pos, **kw)
    except TypeError as exc:
        raise ModelError(f"spec layer {tok!r}: {exc}") from None
    _check_values(tok, layer)
    return layer


def _usage(layer: Any) -> str:
    names = [f.name.upper() for f in dataclasses.fields(layer) if f.name != "params"]
    return f"{layer.kind}:{':'.join(names)}" if names else layer.kind


def _check_values(tok: str, layer: Any) -> None:
    """Each argument of a parsed layer has the type and range its module needs: said here, naming the token.

    A wrong value would otherwise surface later as a bare ``TypeError`` from torch, or as a training
    run that fails at its first step (``conv:0:3`` builds a layer with no filters).
    """
    for f in dataclasses.fields(layer):
        value, kind = getattr(layer, f.name), str(f.type)
        low = 0 if f.name == "padding" else 1
        if kind.startswith("int") and not (value is None and "None" in kind):
            if isinstance(value, str) and "str" in kind and value in ("same", "valid"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                what = f"a whole number of at least {low}" + (" or same/valid" if "str" in kind else "")
                raise ModelError(f"spec layer {tok!r}: {f.name} must be {what}, got {value!r}; write it as "
                                 f"{_usage(layer)}, e.g. conv:32:3 (32 filters of 3x3)")
        elif kind == "float" and not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ModelError(f"spec layer {tok!r}: {f.name} must be a number in [0, 1), got {value!r}; "
                             "e.g. dropout:0.5")


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


def spec_dims(spec: str | Sequence[Any]) -> int:
    """Spatial axes of a spec's layers: 1 (series, ``conv1d`` ...) or 2 (images; also for a spec of none).

    Raises:
        ModelError: The spec mixes 1-D and 2-D layers (naming one of each).
    """
    kinds: dict[int, str] = {}
    for layer in parse_spec(spec):
        dims = getattr(layer, "dims", None)
        if dims is not None:
            kinds.setdefault(int(dims), layer.kind)
    if len(kinds) > 1:
        raise ModelError(
            f"spec mixes 1-D ({kinds[1]}) and 2-D ({kinds[2]}) layers; use conv1d/maxpool1d/bn1d/res1d for "
            "series or conv/maxpool/bn/res for images, not both"
        )
    return next(iter(kinds), 2)


def default_input_size(spec: str | Sequence[Any]) -> tuple[int, ...]:
    """The input a spec model gets by default: (3, 224, 224) for images, (1, 128) for a 1-D spec."""
    return DEFAULT_INPUT[spec_dims(spec)]


def spec_entry(text: str) -> ModelEntry:
    """The registry entry of a layer spec string: parsed (and so checked) now, built on demand.

    The network has a global-pooling head, so it takes any image size (any length for a 1-D spec); its
    default input is :data:`DEFAULT_INPUT` of its axes (:data:`SPEC_INPUT_SIZE` for images) and its classes
    :data:`SPEC_NUM_CLASSES`.

    Raises:
        ModelError: A malformed spec (naming the token and how to write it), or one mixing 1-D and 2-D layers.
    """
    layers = parse_spec(text)
    size = default_input_size(layers)

    def build(*, num_classes: int, in_chans: int, pretrained: bool = False) -> SpecNet:
        return build_from_spec(layers, head="gap", input_size=(in_chans, *size[1:]), num_classes=num_classes)

    return ModelEntry(text, build, "spec", size, SPEC_NUM_CLASSES,
                      description="a layer spec string (random weights)", sized_by_input=True)


register_pattern(is_spec, spec_entry)  # a layer spec string is a model name like any other


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
    input_size: tuple[int, ...] | None = None,
    num_classes: int = 10,
) -> SpecNet:
    """Build a network from a layer spec and a head.

    Args:
        spec: Layer dataclasses or a spec string (see the module docstring).
        head: A :class:`Head` or just its pool, "flatten" or "gap".
        input_size: (C, H, W), or (C, L) for a 1-D spec; C is the first layer's input channels, the
            rest sizes a flatten head. None: :data:`DEFAULT_INPUT`.
        num_classes: Outputs of the last dense layer (unused with head "none").

    Returns:
        The model.

    Raises:
        ModelError: Bad spec, or an input too small for the layers (naming the layer).
    """
    layers = parse_spec(spec)
    dims = spec_dims(layers)
    input_size = tuple(input_size) if input_size is not None else DEFAULT_INPUT[dims]
    if len(input_size) != dims + 1:
        want = "CxL, e.g. 1x128 (a 1-D spec: conv1d, ...)" if dims == 1 else "CxHxW, e.g. 3x224x224"
        raise ModelError(f"{'x'.join(map(str, input_size))}: give it as {want}", param="input_size")
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
        avg = nn.AdaptiveAvgPool1d(1) if dims == 1 else nn.AdaptiveAvgPool2d(1)
        pool = nn.Sequential(OrderedDict(avg=avg, flatten=nn.Flatten()))
    hmods: OrderedDict[str, nn.Module] = OrderedDict([("flatten" if hd.pool == "flatten" else "pool", pool)])
    if hd.hidden:
        hmods["fc1"] = nn.Linear(n_in, hd.hidden)
        hmods["relu"] = nn.ReLU()
        n_in = hd.hidden
    if hd.dropout:
        hmods["drop"] = nn.Dropout(hd.dropout)
    hmods["fc"] = nn.Linear(n_in, num_classes)
    return SpecNet(features, nn.Sequential(hmods), cam_layer=cam)
