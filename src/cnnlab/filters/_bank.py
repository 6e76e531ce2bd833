"""The FilterBank record and the bank registry (one registry; a duplicate name raises)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ArgumentError, CnnlabError, did_you_mean
from ..memory import check_memory
from ._limits import BankParamError

ParamValue = float | int | str | list[int] | list[float]


@dataclass(frozen=True)
class DerivedResponse:
    """A response computed from two filter responses, e.g. the gradient magnitude ``sqrt(gx² + gy²)``.

    Attributes:
        name: Name of the derived response (shown as a title).
        inputs: Indices of the two filters it combines.
        op: The combination; "magnitude" is ``sqrt(a² + b²)``.
    """

    name: str
    inputs: tuple[int, int]
    op: Literal["magnitude"] = "magnitude"


@dataclass(frozen=True)
class FilterBank:
    """A stack of 2-D kernels ready for one batched convolution.

    Attributes:
        name: Registry name of the bank ("gabor", "sobel", ...).
        weight: Kernels, float Tensor ``[out, in, kh, kw]`` (cross-correlation kernels, as in a conv layer).
        names: One short label per kernel, with its parameters (used as figure titles).
        params: One dict of parameters per kernel (JSON-friendly values).
        stride: The stride the bank is meant to run with (2 for the Haar wavelet, else 1).
        derived: Responses computed from pairs of filter responses (e.g. Sobel magnitude).
    """

    name: str
    weight: torch.Tensor
    names: list[str]
    params: list[dict[str, ParamValue]]
    stride: int = 1
    derived: tuple[DerivedResponse, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.weight.ndim != 4:
            raise ValueError(
                f"FilterBank {self.name!r}: weight must be [out, in, kh, kw], not {self.weight.shape}"
            )
        if not len(self.names) == len(self.params) == self.weight.shape[0]:
            raise ValueError(f"FilterBank {self.name!r}: need one name and one params dict per kernel")

    @property
    def out_channels(self) -> int:
        """Number of kernels."""
        return int(self.weight.shape[0])

    @property
    def in_channels(self) -> int:
        """Input channels each kernel spans."""
        return int(self.weight.shape[1])

    @property
    def kernel_size(self) -> tuple[int, int]:
        """``(kh, kw)`` shared by all kernels."""
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    @property
    def response_names(self) -> list[str]:
        """What :func:`cnnlab.filters.apply_bank` returns, in order: filters, then derived responses."""
        return [*self.names, *(d.name for d in self.derived)]

    @property
    def nonnegative_responses(self) -> list[bool]:
        """Per response name: True when it is >= 0 for every non-negative image.

        That is a kernel without negative weights (a blur) or a derived magnitude; figures draw those on a
        sequential colour scale from 0, and the others (signed) on a diverging scale centred on 0.
        """
        kernels = [bool((k >= 0).all()) for k in self.weight]
        return [*kernels, *(d.op == "magnitude" for d in self.derived)]

    def to(self, dtype: torch.dtype) -> FilterBank:
        """The same bank with weights cast to ``dtype``."""
        weight = self.weight.to(dtype)
        return FilterBank(self.name, weight, self.names, self.params, self.stride, self.derived)


BankBuilder = Callable[..., FilterBank]
_BANKS: dict[str, BankBuilder] = {}


def register_bank(name: str) -> Callable[[BankBuilder], BankBuilder]:
    """Decorator registering a bank builder under ``name``.

    Raises:
        CnnlabError: when ``name`` is already registered.
    """

    def deco(fn: BankBuilder) -> BankBuilder:
        if name in _BANKS:
            raise CnnlabError(f"filter bank {name!r} is already registered; choose another name")
        _BANKS[name] = fn
        return fn

    return deco


def registered_banks() -> dict[str, BankBuilder]:
    """The registry (name -> builder), in registration order."""
    return dict(_BANKS)


def build_bank(name: str, **params: Any) -> FilterBank:
    """Build bank ``name`` with keyword parameters, with one-line errors for unknown names/parameters."""
    if name not in _BANKS:
        hint = did_you_mean(name, _BANKS)
        choices = ", ".join(_BANKS)
        raise ArgumentError(f"{name}: unknown filter bank; {hint}choose from {choices}", param="bank")
    fn = _BANKS[name]
    accepted = [p for p in inspect.signature(fn).parameters]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise CnnlabError(
            f"bank {name!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"it accepts {', '.join(accepted) or 'no parameters'}"
        )
    return fn(**params)


# ---- helpers shared by the bank definitions -------------------------------------------------------


def stack(name: str, kernels: Sequence[np.ndarray], names: list[str], params: list[dict[str, ParamValue]],
          *, stride: int = 1, derived: tuple[DerivedResponse, ...] = ()) -> FilterBank:
    """Zero-pad 2-D kernels to a common (centred) size and stack them as ``[out, 1, kh, kw]`` float64.

    Raises:
        CnnlabError: when the stack would exceed the filters memory budget (see ``_limits``).
    """
    kh = max(k.shape[0] for k in kernels)
    kw = max(k.shape[1] for k in kernels)
    check_memory(8 * len(kernels) * kh * kw, f"the {name} bank ({len(kernels)} kernels of {kh}x{kw} float64)",
                 "use fewer or smaller kernels")
    out = np.zeros((len(kernels), 1, kh, kw))
    for i, k in enumerate(kernels):
        top, left = (kh - k.shape[0]) // 2, (kw - k.shape[1]) // 2
        out[i, 0, top: top + k.shape[0], left: left + k.shape[1]] = k
    return FilterBank(name, torch.from_numpy(out), names, params, stride, derived)


def _numbers(name: str, values: Sequence[float] | float, ok: Callable[[Any], bool], what: str) -> list[float]:
    """``values`` (a scalar or a sequence) as a non-empty list of floats each ``ok``, else ``what``."""
    seq = [values] if isinstance(values, (int, float)) else list(values)
    if not seq or not all(ok(v) for v in seq):
        raise BankParamError(name, values, what)
    return [float(v) for v in seq]


def positive(name: str, values: Sequence[float] | float) -> list[float]:
    """A list of positive finite numbers from a scalar or sequence, or a one-line error naming ``name``.

    Raises:
        BankParamError: naming ``name`` (a subclass of CnnlabError).
    """
    return _numbers(name, values, lambda v: isinstance(v, (int, float)) and 0 < v < math.inf,
                    "give one or more positive (finite) numbers")


def finite(name: str, values: Sequence[float] | float) -> list[float]:
    """A list of finite numbers (angles, phases) from a scalar or sequence, or one line naming ``name``.

    Raises:
        BankParamError: naming ``name``: an empty list, NaN, an infinity or not a number.
    """
    return _numbers(name, values, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v), "give one or more finite numbers (not NaN or an infinity)")
