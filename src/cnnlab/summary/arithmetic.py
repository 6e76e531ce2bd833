"""Convolution arithmetic of one layer: input, kernel, padding, stride, dilation -> output size.

``out = floor((n + 2p - d(k - 1) - 1) / s) + 1`` per axis (Dumoulin & Visin, "A guide to convolution
arithmetic for deep learning"), computed by :func:`cnnlab.filters.output_size`; pools with
``ceil_mode`` round up instead, as PyTorch does (and drop a last window that would start in the
padding). :func:`layer_arithmetic` reads the numbers off a model's conv or pool layer and the size of
the map that reaches it. Numbers go up to :data:`~cnnlab.values.MAX_SIZE`; :func:`torch_output` runs
PyTorch on the meta device (shapes only), so ``n`` = 100,000,000 costs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ArgumentError, ModelArgumentError
from ..filters.convolve import output_size
from ..values import MAX_SIZE

__all__ = ["ConvArithmetic", "arithmetic", "layer_arithmetic", "torch_output"]

Kind = Literal["conv", "maxpool", "avgpool"]
Pair = tuple[int, int]


@dataclass(frozen=True)
class ConvArithmetic:
    """One conv/pool layer's geometry, per axis (rows, cols).

    Attributes:
        n: Input size.
        k: Kernel size.
        pad: Padding ``((top, bottom), (left, right))``.
        s: Stride.
        d: Dilation.
        kind: "conv", "maxpool" or "avgpool".
        ceil_mode: Pools only: the output size rounds up.
        layer: Dotted name of the layer it was read from (None when given by numbers).
        channels: (in, out) channels of a conv layer, else None.
    """

    n: Pair
    k: Pair
    pad: tuple[Pair, Pair]
    s: Pair
    d: Pair
    kind: Kind = "conv"
    ceil_mode: bool = False
    layer: str | None = None
    channels: Pair | None = None

    def out_axis(self, axis: int) -> int:
        """Output size along ``axis`` (0 rows, 1 cols)."""
        n, k, s, d = self.n[axis], self.k[axis], self.s[axis], self.d[axis]
        before, after = self.pad[axis]
        if not self.ceil_mode:
            return output_size(n, k, pad=(before, after), stride=s, dilation=d)
        span = n + before + after - d * (k - 1) - 1
        out = -(-span // s) + 1
        return out - 1 if (out - 1) * s >= n + before else out  # PyTorch: no window starts in the padding

    @property
    def out(self) -> Pair:
        """Output size (rows, cols)."""
        return self.out_axis(0), self.out_axis(1)

    def formula(self, axis: int = 0) -> str:
        """The output-size formula with this layer's numbers filled in, e.g.
        ``⌊(28 + 2·0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 26``."""
        n, k, s, d = self.n[axis], self.k[axis], self.s[axis], self.d[axis]
        before, after = self.pad[axis]
        pad = f"2·{before}" if before == after else f"{before} + {after}"
        lo, hi = ("⌈", "⌉") if self.ceil_mode else ("⌊", "⌋")
        return f"{lo}({n} + {pad} − {d}·({k} − 1) − 1) / {s}{hi} + 1 = {self.out_axis(axis)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``cnnlab arithmetic --json``)."""
        return {
            "layer": self.layer, "kind": self.kind, "n": list(self.n), "k": list(self.k),
            "padding": [list(p) for p in self.pad], "stride": list(self.s), "dilation": list(self.d),
            "ceil_mode": self.ceil_mode, "out": list(self.out),
            "formula": {"rows": self.formula(0), "cols": self.formula(1)},
        }

    @property
    def square(self) -> bool:
        """Rows and columns have the same numbers (one formula says it all)."""
        return (self.n[0], self.k[0], self.pad[0], self.s[0], self.d[0]) == (
            self.n[1], self.k[1], self.pad[1], self.s[1], self.d[1])


def _pair(v: Any) -> Pair:
    return (int(v[0]), int(v[-1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def arithmetic(n: int | Pair, k: int | Pair, *, p: int | Pair = 0, s: int | Pair = 1, d: int | Pair = 1,
               kind: Kind = "conv") -> ConvArithmetic:
    """The arithmetic of a layer given by numbers (``p`` is the padding on each side).

    Raises:
        ArgumentError: A size below 1 or above :data:`~cnnlab.values.MAX_SIZE`, negative padding, or a
            kernel that does not fit the padded input.
    """
    for name, value, low in (("n", n, 1), ("k", k, 1), ("s", s, 1), ("d", d, 1), ("p", p, 0)):
        pair = _pair(value)
        if min(pair) < low:
            raise ArgumentError(f"must be at least {low}, got {min(pair)}", param=name)
        if max(pair) > MAX_SIZE:
            raise ArgumentError(f"must be at most {MAX_SIZE:,}, got {max(pair):,}", param=name)
    a = ConvArithmetic(_pair(n), _pair(k), (_pair(p), _pair(p)), _pair(s), _pair(d), kind=kind)
    if kind == "avgpool" and a.d != (1, 1):
        raise ArgumentError("average pooling has no dilation; use 1, or `kind` maxpool", param="d")
    if min(a.out) < 1:
        raise ArgumentError(
            f"the kernel spans {a.d[0] * (a.k[0] - 1) + 1} pixels, more than the padded input "
            f"{a.n[0] + 2 * a.pad[0][0]}; use a larger `n` or more `p`", param="k")
    return a


def _padding(module: nn.Module, k: Pair, d: Pair) -> tuple[Pair, Pair]:
    padding = getattr(module, "padding", 0)
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":  # PyTorch puts total // 2 before the input, the rest after
        totals = (d[0] * (k[0] - 1), d[1] * (k[1] - 1))
        return (totals[0] // 2, totals[0] - totals[0] // 2), (totals[1] // 2, totals[1] - totals[1] // 2)
    p = _pair(padding)
    return (p[0], p[0]), (p[1], p[1])


def layer_arithmetic(model: nn.Module, layer: str, input_size: tuple[int, int, int]) -> ConvArithmetic:
    """The arithmetic of a model's conv or pool layer at the map size that reaches it.

    Args:
        model: The network.
        layer: A dotted name or ``Type:index`` (``Conv2d:0``, ``MaxPool2d:-1``) naming an ``nn.Conv2d``,
            ``nn.MaxPool2d`` or ``nn.AvgPool2d``.
        input_size: (C, H, W) of the model's input.

    Returns:
        A :class:`ConvArithmetic` for the layer.

    Raises:
        ModelArgumentError: The layer is not a conv or pool layer, or never runs.
    """
    from ..interpret.hooks import resolve_layer, run_until, truncated_capture
    from ..memory import check_memory, dry_forward

    name, module = resolve_layer(model, layer)
    if isinstance(module, nn.Conv2d):
        kind: Kind = "conv"
        k, s, d = _pair(module.kernel_size), _pair(module.stride), _pair(module.dilation)
        pad = _padding(module, k, d)
        channels: Pair | None = (module.in_channels, module.out_channels)
    elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "maxpool" if isinstance(module, nn.MaxPool2d) else "avgpool"
        k = _pair(module.kernel_size)
        s = _pair(module.stride if module.stride not in (None, (), []) else module.kernel_size)
        d = _pair(getattr(module, "dilation", 1))
        p = _pair(module.padding)
        pad, channels = ((p[0], p[0]), (p[1], p[1])), None
    else:
        raise ModelArgumentError(
            f"{name!r} is a {type(module).__name__}; choose an nn.Conv2d, nn.MaxPool2d or nn.AvgPool2d "
            "(e.g. Conv2d:0 or MaxPool2d:0)", param="layer")
    size = "x".join(map(str, input_size))
    probe = dry_forward(model, input_size)  # the run below stops at the layer: at most this much
    check_memory(probe.activation_bytes + 4 * math.prod(input_size), f"running {name} on a {size} input",
                 "use a smaller `input_size`")
    seen: list[tuple[int, ...]] = []
    handle = module.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    try:
        with torch.no_grad(), truncated_capture(model, name):
            run_until(model, torch.zeros(1, *input_size))
    finally:
        handle.remove()
    if not seen:
        raise ModelArgumentError(f"{name!r} does not run in the forward pass", param="layer")
    n = (seen[0][-2], seen[0][-1])
    return ConvArithmetic(n, k, pad, s, d, kind=kind, ceil_mode=bool(getattr(module, "ceil_mode", False)),
                          layer=name, channels=channels)


def torch_output(a: ConvArithmetic) -> Pair:
    """The output size PyTorch gives for this geometry (the layer run on the meta device, shapes only,
    with PyTorch's own shape rules): the check of ``a.out``.

    Raises:
        ArgumentError: PyTorch refuses the geometry (e.g. pool padding over half the kernel), with its reason.
    """
    import torch.nn.functional as F

    x = torch.zeros(1, 1, *a.n, device="meta")
    (pt, pb), (pl, pr) = a.pad
    try:
        if a.kind == "conv":
            kernel = torch.zeros(1, 1, *a.k, device="meta")
            y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), kernel, stride=a.s, dilation=a.d)
        elif a.kind == "maxpool":
            y = F.max_pool2d(x, a.k, a.s, padding=(pt, pl), dilation=a.d, ceil_mode=a.ceil_mode)
        else:
            y = F.avg_pool2d(x, a.k, a.s, padding=(pt, pl), ceil_mode=a.ceil_mode)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ArgumentError(f"PyTorch refuses this {a.kind} geometry: {reason}", param="p") from None
    return int(y.shape[-2]), int(y.shape[-1])
