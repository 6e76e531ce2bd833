"""The conv stages of a model and where each unit of their maps looks on the input.

:class:`UnitTracker` is the summary's :class:`~cnnlab.summary.receptive.FieldTracker` (field size and
jump of every tensor, propagated through the real forward graph) plus the one thing a box on the input
needs beyond them: the *offset*, the input row/column where the field of unit 0 starts. Padding moves
it (``offset -= padding * jump``; explicit ``F.pad`` too, which is how timm's asymmetric "same" padding
works), nothing else does, so unit ``u`` sees input pixels ``offset + u * jump`` to
``offset + u * jump + rf - 1`` (clipped to the image). Kept here, next to its only user, instead of
changing the summary's tracker; it reads the same arguments the same way.

:func:`conv_stages` picks the layers the page shows: the children of ``model.features`` (one level of
pure containers expanded, e.g. timm's ``blocks`` into ``blocks.0`` .. ``blocks.6``), keeping each that
outputs a spatial map, except a layer whose output the next one only normalises or activates (a conv
followed by its batch norm shows as the batch norm) and no-op ``Identity`` layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from ..summary.receptive import FieldTracker, _arg, _pair

__all__ = ["Box", "Stage", "UnitTracker", "conv_stages"]


def _padding_before(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """Rows/cols of padding before the first input row/col (``'same'``: PyTorch puts the odd one after)."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        return (dilation[0] * (kernel[0] - 1) // 2, dilation[1] * (kernel[1] - 1) // 2)
    return _pair(padding, 0)


class UnitTracker(FieldTracker):
    """A :class:`FieldTracker` that also tracks the offset of unit 0's field (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._offsets: WeakIdKeyDictionary = WeakIdKeyDictionary()

    def mark_input(self, x: torch.Tensor) -> None:
        super().mark_input(x)
        self._offsets[x] = (0.0, 0.0)

    def offset(self, t: Any) -> tuple[float, float] | None:
        """Input (row, col) where the field of unit (0, 0) of tensor ``t`` starts; None when unknown."""
        return self._offsets.get(t) if isinstance(t, torch.Tensor) else None

    def _propagate(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        super()._propagate(func, args, kwargs, out)
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor) and self.field(t) is not None]
        inputs = [t for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor) and t in self._offsets]
        if not outs or not inputs:
            return
        x = inputs[0]
        lo, f = self._offsets[x], self.field(x)
        name = getattr(func, "__name__", "")
        before = (0, 0)
        if f is not None and f.jump is not None and x.dim() == 4:
            if name in ("pad", "_pad", "constant_pad_nd"):
                pad = list(_arg(args, kwargs, 1, "pad", ()))
                before = (int(pad[2]) if len(pad) >= 4 else 0, int(pad[0]) if pad else 0)  # (top, left)
            elif name in ("conv2d", "_conv_forward"):
                w = _arg(args, kwargs, 1, "weight", None)
                dil = _pair(_arg(args, kwargs, 5, "dilation", 1))
                before = _padding_before(_arg(args, kwargs, 4, "padding", 0), tuple(w.shape[-2:]), dil)
            elif "pool2d" in name and "adaptive" not in name:
                before = _pair(_arg(args, kwargs, 3, "padding", 0), 0)
            else:  # a residual sum or a concatenation: the union of the inputs' fields starts first
                offs = [self._offsets[t] for t in inputs]
                lo = (min(o[0] for o in offs), min(o[1] for o in offs))
            lo = (lo[0] - before[0] * f.jump[0], lo[1] - before[1] * f.jump[1])
        for t in outs:
            self._offsets[t] = lo


@dataclass(frozen=True)
class Box:
    """Input pixels a unit sees: rows ``top..bottom`` and cols ``left..right``, inclusive."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def size(self) -> tuple[int, int]:
        """(rows, cols)."""
        return (self.bottom - self.top + 1, self.right - self.left + 1)


@dataclass(frozen=True)
class Stage:
    """One layer of the explorer: its output map and the geometry of its units on the input.

    Attributes:
        name: Dotted module name.
        type: Module class name.
        shape: Output (channels, rows, cols).
        rf: Receptive field (rows, cols) in input pixels.
        jump: Input pixels between neighbouring units (rows, cols).
        offset: Input (row, col) where the field of unit (0, 0) starts (negative: padding).
        input_size: (rows, cols) of the model's input.
    """

    name: str
    type: str
    shape: tuple[int, int, int]
    rf: tuple[int, int]
    jump: tuple[float, float]
    offset: tuple[float, float]
    input_size: tuple[int, int]

    def field(self, row: int, col: int) -> Box:
        """The unclipped field of unit (row, col): it may start before 0 or end past the input."""
        top = round(self.offset[0] + row * self.jump[0])
        left = round(self.offset[1] + col * self.jump[1])
        return Box(top, left, top + self.rf[0] - 1, left + self.rf[1] - 1)

    def box(self, row: int, col: int) -> Box:
        """The field of unit (row, col) clipped to the input: the pixels it can see."""
        f, (h, w) = self.field(row, col), self.input_size
        return Box(max(f.top, 0), max(f.left, 0), min(f.bottom, h - 1), min(f.right, w - 1))


def _candidates(model: nn.Module) -> list[tuple[str, nn.Module]]:
    root = getattr(model, "features", None)
    prefix = "features." if isinstance(root, nn.Module) else ""
    root = root if isinstance(root, nn.Module) else model
    out: list[tuple[str, nn.Module]] = []
    for name, child in root.named_children():
        grand = list(child.named_children())
        if isinstance(child, nn.Sequential | nn.ModuleList) and grand and all(
            isinstance(g, nn.Sequential) for _, g in grand
        ):
            out.extend((f"{prefix}{name}.{g}", m) for g, m in grand)
        else:
            out.append((f"{prefix}{name}", child))
    return out


def _only_refines(module: nn.Module) -> bool:
    """True for a layer that keeps its input's shape and mixes no pixels (norm, activation, dropout)."""
    return not any(isinstance(m, nn.Conv2d | nn.Linear) or "pool" in type(m).__name__.lower()
                   for m in module.modules())


def conv_stages(model: nn.Module, input_size: tuple[int, int, int]) -> list[Stage]:
    """The layers the explorer shows, shallow to deep, with their unit geometry (module docstring).

    Args:
        model: The network (run in eval mode on one zero image).
        input_size: (C, H, W) of its input.

    Returns:
        One :class:`Stage` per layer with a spatial output whose field is known.
    """
    cands = [(n, m) for n, m in _candidates(model) if not isinstance(m, nn.Identity)]
    seen: dict[str, tuple[Any, ...]] = {}
    tracker = UnitTracker()

    def make_hook(name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and name not in seen:
                seen[name] = (tuple(output.shape), tracker.field(output), tracker.offset(output))

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in cands]
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros((1, *input_size), device=next(model.parameters()).device)
        with torch.no_grad(), tracker:
            tracker.mark_input(x)
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    stages = []
    for i, (name, module) in enumerate(cands):
        shape, f, off = seen.get(name, ((), None, None))
        if len(shape) != 4 or f is None or f.jump is None or off is None:
            continue
        nxt = cands[i + 1] if i + 1 < len(cands) else None
        if nxt is not None and seen.get(nxt[0], ((),))[0] == shape and _only_refines(nxt[1]):
            continue
        stages.append(Stage(name, type(module).__name__, (shape[1], shape[2], shape[3]), f.rf, f.jump, off,
                            (int(input_size[1]), int(input_size[2]))))
    return stages
