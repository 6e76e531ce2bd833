"""Receptive field and jump (effective stride) of every tensor in a forward pass.

Hand-written because no maintained library computes receptive fields through arbitrary module graphs.
A :class:`~torch.overrides.TorchFunctionMode` sees every torch operation of the forward (functional
``F.conv2d`` inside ``nn.Conv2d``, the ``+`` of a residual block, the ``torch.cat`` of an inception
block), so the field is propagated through the real graph rather than a guessed chain of layers:

* conv (kernel k, dilation d, stride s): ``rf += (d * (k - 1)) * jump``; ``jump *= s``;
* max/avg pooling: the same with the pooling window (max-pooling's field is its whole window);
* adaptive pooling: the largest adaptive window; pooling to 1 x 1 is global;
* flatten / reductions that remove the spatial axes: global (the unit sees the whole input);
* padding: unchanged (it moves the grid's origin only);
* any other op: the largest field over its tensor inputs (residual ``+``, ``cat``, ReLU, BN, ...).

Where a field lies is tracked too: :meth:`FieldTracker.start` is the input row/column where the field
of unit (0, 0) begins (negative where it reaches into padding), so unit ``u`` sees input pixels
``start + u * jump`` to ``start + u * jump + rf - 1``. Padding moves it (``start -= padding_before *
jump``, for a conv's or pool's own padding, torch's ``"same"`` included, and for an explicit ``F.pad``,
how timm's asymmetric "same" padding works); an op with several inputs (a residual sum, a
concatenation) starts where the first of their fields starts; nothing else moves it.

A *global* unit depends on the whole input: its field is reported as the extent the last spatial map
covers, ``rf + (n - 1) * jump``, and it has no jump. Squeeze-excitation gates make the gated map
global, which is true: every output then depends on every pixel.
Upsampling and transposed convolutions are not modelled (their tensors get no field).

Series: when the marked input is ``[B, C, L]`` the tracker works along time alone (``conv1d``,
``max/avg_pool1d``, ``adaptive_*_pool1d``): fields, jumps and starts are then 1-tuples, in samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary


@dataclass(frozen=True)
class Field:
    """Receptive field (rows, cols) in input pixels and jump (input pixels between neighbouring units).

    For a series both are 1-tuples: (samples,).
    """

    rf: tuple[int, ...]
    jump: tuple[float, ...] | None  # None: a global unit (no spatial grid)

    @property
    def is_global(self) -> bool:
        """True when the unit has no spatial position (flattened / globally pooled)."""
        return self.jump is None


INPUT_FIELD = Field((1, 1), (1.0, 1.0))


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _pair(v: Any, default: int | None = None) -> tuple[int, int]:
    if v is None:
        v = default
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1])) if len(v) else _pair(default)
    return int(v), int(v)


def _one(v: Any, default: int | None = None) -> tuple[int]:
    if v is None:
        v = default
    if isinstance(v, (list, tuple)):
        return (int(v[-1]),) if len(v) else _one(default)
    return (int(v),)


def _padding_before(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, int] | None:
    """Rows and columns of padding an op puts before its input (None: the op pads nothing)."""
    if name in ("pad", "_pad", "constant_pad_nd"):
        pad = list(_arg(args, kwargs, 1, "pad", ()))  # (left, right, top, bottom, ...)
        return (int(pad[2]) if len(pad) >= 4 else 0, int(pad[0]) if pad else 0)
    if name in ("conv2d", "_conv_forward"):
        padding = _arg(args, kwargs, 4, "padding", 0)
        if padding == "valid":
            return (0, 0)
        if padding == "same":  # torch puts total // 2 first, the odd one after
            w = _arg(args, kwargs, 1, "weight", None)
            d = _pair(_arg(args, kwargs, 5, "dilation", 1))
            return (d[0] * (int(w.shape[-2]) - 1) // 2, d[1] * (int(w.shape[-1]) - 1) // 2)
        return _pair(padding, 0)
    if "pool2d" in name and "adaptive" not in name:
        return _pair(_arg(args, kwargs, 3, "padding", 0), 0)
    return None


def _padding_before_1d(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int] | None:
    """Samples of padding a 1-D op puts before its input (None: the op pads nothing)."""
    if name in ("pad", "_pad", "constant_pad_nd"):
        pad = list(_arg(args, kwargs, 1, "pad", ()))  # (left, right)
        return (int(pad[0]) if pad else 0,)
    if name in ("conv1d", "_conv_forward"):
        padding = _arg(args, kwargs, 4, "padding", 0)
        if padding == "valid":
            return (0,)
        if padding == "same":  # torch puts total // 2 first, the odd one after
            w = _arg(args, kwargs, 1, "weight", None)
            d = _one(_arg(args, kwargs, 5, "dilation", 1))
            return (d[0] * (int(w.shape[-1]) - 1) // 2,)
        return _one(padding, 0)
    if "pool1d" in name and "adaptive" not in name:
        return _one(_arg(args, kwargs, 3, "padding", 0), 0)
    return None


def _slide(f: Field, k: tuple[int, ...], s: tuple[int, ...], d: tuple[int, ...] | None = None) -> Field:
    if f.jump is None:
        return f
    jump = f.jump
    d = d or (1,) * len(k)
    rf = tuple(f.rf[a] + round(d[a] * (k[a] - 1) * jump[a]) for a in range(len(f.rf)))
    return Field(rf, tuple(jump[a] * s[a] for a in range(len(f.rf))))


def _globalise(f: Field, spatial: tuple[int, ...]) -> Field:
    if f.jump is None:
        return f
    axes = len(f.rf)
    n = tuple(spatial[-axes:]) if len(spatial) >= axes else (1,) * axes
    return Field(tuple(f.rf[a] + round((n[a] - 1) * f.jump[a]) for a in range(axes)), None)


def _adaptive_window(n: int, o: int) -> int:
    # PyTorch's adaptive pooling: window i spans [floor(i*n/o), ceil((i+1)*n/o)).
    return max(math.ceil((i + 1) * n / o) - (i * n) // o for i in range(o))


def _combine(fields: list[Field]) -> Field:
    axes = range(len(fields[0].rf))
    rf = tuple(max(f.rf[a] for f in fields) for a in axes)
    if any(f.jump is None for f in fields):
        return Field(rf, None)
    return Field(rf, tuple(max(f.jump[a] for f in fields) for a in axes))  # type: ignore[index]


class FieldTracker(TorchFunctionMode):
    """Tracks a :class:`Field` for every tensor computed while the mode is active.

    Usage::

        with FieldTracker() as ft:
            ft.mark_input(x)
            y = model(x)
        ft.field(y)   # Field of the output
    """

    def __init__(self) -> None:
        super().__init__()
        self._fields: WeakIdKeyDictionary = WeakIdKeyDictionary()  # keyed by tensor identity
        self._starts: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self._series = False

    def mark_input(self, x: torch.Tensor) -> None:
        """Declare ``x`` a network input (field 1 x 1, jump 1, unit 0's field starting at pixel 0).

        A ``[B, C, L]`` input makes the tracker work along time (fields in samples, 1-tuples).
        """
        self._series = x.dim() == 3
        self._fields[x] = Field((1,), (1.0,)) if self._series else INPUT_FIELD
        self._starts[x] = (0.0,) if self._series else (0.0, 0.0)

    def field(self, t: Any) -> Field | None:
        """The field of tensor ``t`` (None when unknown)."""
        return self._fields.get(t) if isinstance(t, torch.Tensor) else None

    def start(self, t: Any) -> tuple[float, float] | None:
        """Input (row, col) where the field of unit (0, 0) of ``t`` begins (None when unknown or global)."""
        f = self.field(t)
        return self._starts.get(t) if f is not None and f.jump is not None else None

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self._propagate(func, args, kwargs, out)
        return out

    def _propagate(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not outs:
            return
        inputs = [
            t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t in self._fields
        ]
        if not inputs:
            return
        x = inputs[0]
        fin = self._fields[x]
        name = getattr(func, "__name__", "")
        res: Field | None
        if self._series:
            res = self._series_field(name, args, kwargs, x, fin, inputs, outs)
        elif name in ("pad", "_pad", "constant_pad_nd") and x.dim() == 4:
            res = fin  # padding moves the grid's origin, not the field size or the jump
        elif name in ("conv2d", "_conv_forward") and x.dim() == 4:
            w = _arg(args, kwargs, 1, "weight", None)
            k = (int(w.shape[-2]), int(w.shape[-1]))
            s = _pair(_arg(args, kwargs, 3, "stride", 1))
            dil = _pair(_arg(args, kwargs, 5, "dilation", 1))
            res = _slide(fin, k, s, dil)
        elif "pool2d" in name and "adaptive" not in name and x.dim() == 4:
            k = _pair(_arg(args, kwargs, 1, "kernel_size", 1))
            stride = _arg(args, kwargs, 2, "stride", None)
            s = _pair(stride if stride not in (None, [], ()) else k)
            dil = _pair(_arg(args, kwargs, 4, "dilation", 1)) if "max" in name else (1, 1)
            res = _slide(fin, k, s, dil)
        elif "adaptive" in name and "pool2d" in name and x.dim() == 4:
            n, o = tuple(x.shape[-2:]), tuple(outs[0].shape[-2:])
            if o == (1, 1):
                res = _globalise(fin, n)
            else:
                k = (_adaptive_window(n[0], o[0]), _adaptive_window(n[1], o[1]))
                res = _slide(fin, k, (1, 1))
                if res.jump is not None:
                    res = Field(res.rf, (res.jump[0] * n[0] / o[0], res.jump[1] * n[1] / o[1]))
        else:
            res = self._elementwise(inputs, outs[0])
        if res is not None:
            for t in outs:
                self._fields[t] = res
            self._place(name, args, kwargs, inputs, outs)

    def _series_field(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        x: torch.Tensor,
        fin: Field,
        inputs: list[torch.Tensor],
        outs: list[torch.Tensor],
    ) -> Field | None:
        """The same rules along time, for ``[B, C, L]`` tensors (1-D convolutions and pools)."""
        if x.dim() == 3 and name in ("pad", "_pad", "constant_pad_nd"):
            return fin
        if x.dim() == 3 and name in ("conv1d", "_conv_forward"):
            w = _arg(args, kwargs, 1, "weight", None)
            return _slide(fin, (int(w.shape[-1]),), _one(_arg(args, kwargs, 3, "stride", 1)),
                          _one(_arg(args, kwargs, 5, "dilation", 1)))
        if x.dim() == 3 and "pool1d" in name and "adaptive" not in name:
            k = _one(_arg(args, kwargs, 1, "kernel_size", 1))
            stride = _arg(args, kwargs, 2, "stride", None)
            s = _one(stride if stride not in (None, [], ()) else k)
            dil = _one(_arg(args, kwargs, 4, "dilation", 1)) if "max" in name else (1,)
            return _slide(fin, k, s, dil)
        if x.dim() == 3 and "adaptive" in name and "pool1d" in name:
            n, o = int(x.shape[-1]), int(outs[0].shape[-1])
            if o == 1:
                return _globalise(fin, tuple(x.shape))
            res = _slide(fin, (_adaptive_window(n, o),), (1,))
            return Field(res.rf, (res.jump[0] * n / o,)) if res.jump is not None else res
        fields = [self._fields[t] for t in inputs]
        timed = [int(t.shape[-1]) for t in inputs if t.dim() == 3 and self._fields[t].jump is not None]
        if outs[0].dim() < 3 or (timed and outs[0].shape[-1] == 1 and max(timed) != 1):
            return _combine([_globalise(f, tuple(t.shape)) for f, t in zip(fields, inputs, strict=True)])
        if timed and int(outs[0].shape[-1]) not in timed:
            return None  # resized along time in a way not modelled
        return _combine(fields)

    def _place(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        inputs: list[torch.Tensor],
        outs: list[torch.Tensor],
    ) -> None:
        """Where the outputs' unit-0 field starts (see the module docstring)."""
        starts = [self._starts[t] for t in inputs if t in self._starts]
        x, fin = inputs[0], self._fields[inputs[0]]
        if not starts or x not in self._starts or fin.jump is None:
            return
        before: tuple[int, ...] | None
        if self._series:
            before = _padding_before_1d(name, args, kwargs) if x.dim() == 3 else None
        else:
            before = _padding_before(name, args, kwargs) if x.dim() == 4 else None
        if before is None:  # any other op: the earliest start of its inputs (equal for one input)
            start = tuple(min(s[a] for s in starts) for a in range(len(fin.rf)))
        else:
            own = self._starts[x]
            start = tuple(own[a] - before[a] * fin.jump[a] for a in range(len(fin.rf)))
        for t in outs:
            self._starts[t] = start

    def _elementwise(self, inputs: list[torch.Tensor], out: torch.Tensor) -> Field | None:
        fields = [self._fields[t] for t in inputs]
        spatial_in = [
            tuple(t.shape[-2:]) for t in inputs if t.dim() >= 3 and self._fields[t].jump is not None
        ]
        if out.dim() < 3 or (spatial_in and tuple(out.shape[-2:]) == (1, 1) and max(spatial_in) != (1, 1)):
            # flatten / global mean: every unit sees the whole last spatial map
            return _combine([_globalise(f, tuple(t.shape)) for f, t in zip(fields, inputs, strict=True)])
        if spatial_in and tuple(out.shape[-2:]) not in spatial_in and out.shape[-2:] != (1, 1):
            return None  # the op resized the map in a way not modelled (upsampling, ...)
        return _combine(fields)
