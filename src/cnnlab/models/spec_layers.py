"""The layers of a compact spec (:mod:`cnnlab.models.spec`): one dataclass per kind, in a registry.

Each class is registered under its spec kind (``conv``, ``maxpool``, ...) and builds its module with
``build(in_channels) -> (module, out_channels)``; ``opens_block`` says whether it starts a new block.
``dims`` is the number of spatial axes a layer works on: 2 for images, 1 for series (``conv1d``,
``maxpool1d``, ``avgpool1d``, ``bn1d``, ``gap1d``, ``res1d``), None for either (``relu``, ``dropout``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from torch import nn

from ..errors import ModelError
from .blocks import FactorisedConv, InceptionBlock, ResidualBlock, ResidualBlock1d

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
    dims = 2
    _module: ClassVar[type[nn.Module]] = nn.Conv2d  # the 1-D kind (a subclass) swaps the torch module

    def build(self, c: int) -> tuple[nn.Module, int]:
        return self._module(
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
    dims = 2
    _module: ClassVar[Any] = None  # each kind names its torch pooling module

    def build(self, c: int) -> tuple[nn.Module, int]:
        return self._module(self.kernel, stride=self.stride, padding=self.padding), c


@register_spec_layer("maxpool")
@dataclass
class MaxPool(_Pool):
    """Max pooling (stride defaults to the kernel)."""

    _module = nn.MaxPool2d


@register_spec_layer("avgpool")
@dataclass
class AvgPool(_Pool):
    """Average pooling (stride defaults to the kernel)."""

    _module = nn.AvgPool2d


@register_spec_layer("bn")
@dataclass
class BatchNorm:
    """Batch normalisation over channels."""

    opens_block = False
    dims = 2
    _module: ClassVar[type[nn.Module]] = nn.BatchNorm2d

    def build(self, c: int) -> tuple[nn.Module, int]:
        return self._module(c), c


@register_spec_layer("relu")
@dataclass
class ReLU:
    """Rectified linear unit."""

    opens_block = False
    dims = None

    def build(self, c: int) -> tuple[nn.Module, int]:
        return nn.ReLU(), c


@register_spec_layer("dropout")
@dataclass
class Dropout:
    """Dropout of whole activations with probability ``p``."""

    p: float = 0.5
    opens_block = False
    dims = None

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
    dims = 2

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
    dims = 2

    def build(self, c: int) -> tuple[nn.Module, int]:
        return FactorisedConv(c, self.out, self.n, padding=self.padding), self.out


@register_spec_layer("inception")
@dataclass
class Inception:
    """Parallel branches (each a list of spec layers) concatenated along channels."""

    branches: list[list[Any]]
    opens_block = True
    dims = 2

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
    dims = 2

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


# ----------------------------------------------------------------------------------- 1-D (series)


@register_spec_layer("conv1d")
@dataclass
class Conv1d(Conv):
    """1-D convolution along time (``conv1d:OUT:K[:stride=S][:padding=P|same][:dilation=D][:bias=0]``)."""

    dims = 1
    _module = nn.Conv1d


@register_spec_layer("maxpool1d")
@dataclass
class MaxPool1d(_Pool):
    """1-D max pooling along time (stride defaults to the kernel)."""

    dims = 1
    _module = nn.MaxPool1d


@register_spec_layer("avgpool1d")
@dataclass
class AvgPool1d(_Pool):
    """1-D average pooling along time (stride defaults to the kernel)."""

    dims = 1
    _module = nn.AvgPool1d


@register_spec_layer("bn1d")
@dataclass
class BatchNorm1d(BatchNorm):
    """Batch normalisation over the channels of a series."""

    dims = 1
    _module = nn.BatchNorm1d


@register_spec_layer("gap1d")
@dataclass
class GlobalAvgPool1d:
    """Global average pooling over time: ``[B, C, L] -> [B, C, 1]`` (every unit sees the whole series)."""

    opens_block = False
    dims = 1

    def build(self, c: int) -> tuple[nn.Module, int]:
        return nn.AdaptiveAvgPool1d(1), c


@register_spec_layer("res1d")
@dataclass
class Residual1d:
    """Residual block of Wang et al. (2017): convs of ``kernels`` (8-5-3), each BN (+ReLU), and a shortcut.

    ``res1d:OUT[:k1=8:k2=5:k3=3]`` (see :class:`~cnnlab.models.blocks.ResidualBlock1d`).
    """

    out: int
    k1: int = 8
    k2: int = 5
    k3: int = 3
    opens_block = True
    dims = 1

    def build(self, c: int) -> tuple[nn.Module, int]:
        return ResidualBlock1d(c, self.out, kernels=(self.k1, self.k2, self.k3)), self.out


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
