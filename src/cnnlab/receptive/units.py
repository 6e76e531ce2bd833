"""The conv stages of a model and where each unit of their maps looks on the input.

Where each unit looks is the summary's :class:`~cnnlab.receptive.tracker.FieldTracker`: field size and
jump of every tensor and where the field of unit 0 starts (``start``; padding moves it), so unit ``u``
sees input pixels ``start + u * jump`` to ``start + u * jump + rf - 1`` (clipped to the image).

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

from .tracker import FieldTracker

__all__ = ["Box", "Stage", "conv_stages"]


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
        if (
            isinstance(child, nn.Sequential | nn.ModuleList)
            and grand
            and all(isinstance(g, nn.Sequential) for _, g in grand)
        ):
            out.extend((f"{prefix}{name}.{g}", m) for g, m in grand)
        else:
            out.append((f"{prefix}{name}", child))
    return out


def _only_refines(module: nn.Module) -> bool:
    """True for a layer that keeps its input's shape and mixes no pixels (norm, activation, dropout)."""
    return not any(
        isinstance(m, nn.Conv2d | nn.Linear) or "pool" in type(m).__name__.lower() for m in module.modules()
    )


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
    tracker = FieldTracker()

    def make_hook(name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and name not in seen:
                seen[name] = (tuple(output.shape), tracker.field(output), tracker.start(output))

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
        stages.append(
            Stage(
                name,
                type(module).__name__,
                (shape[1], shape[2], shape[3]),
                f.rf,
                f.jump,
                off,
                (int(input_size[1]), int(input_size[2])),
            )
        )
    return stages
