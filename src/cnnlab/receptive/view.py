"""Receptive field, seen: where a unit's theoretical field lies on the input, and its effective field.

The theoretical field (size and jump) is :func:`cnnlab.summary.summarize`'s own number, read from its
layer record; where that field lies on the input is the summary tracker's
:meth:`~cnnlab.summary.FieldTracker.start` (the padding rules are there). The effective receptive field
(Luo et al., 2016, "Understanding the effective receptive field in deep convolutional neural networks")
is the magnitude of the gradient of one unit (the centre of the layer's map, summed over channels) with
respect to the input, averaged over inputs: pixels near the centre of the field matter far more than
the border, and a dilated stack leaves gaps. Outside the theoretical field that gradient is exactly
zero, which the tests check with autograd.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ModelArgumentError
from ..interpret.hooks import resolve_layer, run_until, truncated_capture
from ..summary import Field, FieldTracker
from ..values import check_seed

__all__ = ["LayerField", "ReceptiveFieldView", "check_field_memory", "noise_images", "receptive_field_view"]

_SIDES = ("top", "left", "bottom", "right")


def _pair(v: Any, default: int = 0) -> tuple[int, int]:
    if v is None or (isinstance(v, (list, tuple)) and not v):
        return default, default
    if isinstance(v, (list, tuple)):
        return int(v[0]), int(v[-1])
    return int(v), int(v)


@dataclass(frozen=True)
class LayerField:
    """One row of the per-layer plot: a layer whose output has a spatial field."""

    name: str
    type: str
    rf: tuple[int, int]
    jump: tuple[float, float]
    what: str = ""  # e.g. "conv 3x3 d2", "maxpool 2x2 s2"


@dataclass
class ReceptiveFieldView:
    """The theoretical and effective receptive field of the centre unit of one layer.

    Attributes:
        model_name: How the model was named.
        layer: Dotted name of the layer.
        input_size: (C, H, W) of the input.
        output_shape: The layer's output map [K, h, w].
        unit: Position (row, col) of the unit in that map (its centre).
        field: The layer's field and jump, exactly :func:`cnnlab.summary.summarize`'s.
        box: (top, left, bottom, right): the first and last input row/column of the unit's theoretical
            field (it may extend past the image, where the input is padding).
        erf: [H, W] mean over inputs of |d unit / d input| (summed over input channels).
        inputs: What the gradient was averaged over (e.g. "16 random images").
        layers: The field and jump after each layer that changes them, in forward order.
        learned: False when the weights are a random initialisation.
    """

    model_name: str
    layer: str
    input_size: tuple[int, int, int]
    output_shape: tuple[int, ...]
    unit: tuple[int, int]
    field: Field
    box: tuple[float, float, float, float]
    erf: torch.Tensor
    inputs: str
    layers: list[LayerField] = dataclasses.field(default_factory=list)
    learned: bool = True

    @property
    def support(self) -> torch.Tensor:
        """[H, W] bool: pixels where the unit's gradient is non-zero (the effective field's support)."""
        return self.erf > 0

    def support_box(self) -> tuple[int, int, int, int] | None:
        """(top, left, bottom, right) of the non-zero gradient, or None when it is zero everywhere."""
        s = self.support
        if not bool(s.any()):
            return None
        rows, cols = s.any(1).nonzero().flatten(), s.any(0).nonzero().flatten()
        return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())

    def support_inside(self) -> bool:
        """True when every pixel with a non-zero gradient lies inside the theoretical field."""
        sb = self.support_box()
        top, left, bottom, right = self.box
        return sb is None or (sb[0] >= top and sb[1] >= left and sb[2] <= bottom and sb[3] <= right)

    def describe(self) -> str:
        """One line: the unit's field in pixels and where it lies, its jump, and the effective field."""
        top, left, bottom, right = (int(v) if float(v).is_integer() else v for v in self.box)
        sb = self.support_box()
        where = "inside" if self.support_inside() else "OUTSIDE"
        effective = (f"gradient non-zero on rows {sb[0]}..{sb[2]}, cols {sb[1]}..{sb[3]} ({where} the field)"
                     if sb else "gradient zero")
        jump = self.field.jump or (0.0, 0.0)
        jump_text = f"{jump[0]:g}" if jump[0] == jump[1] else f"{jump[0]:g}x{jump[1]:g}"
        return (f"{self.layer}: unit {self.unit} sees {self.field.rf[0]}x{self.field.rf[1]} px "
                f"(rows {top}..{bottom}, cols {left}..{right}), jump {jump_text} px; {effective} "
                f"over {self.inputs}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``cnnlab rf --json``)."""
        sb = self.support_box()
        return {
            "model": self.model_name,
            "layer": self.layer,
            "input_size": list(self.input_size),
            "output_shape": list(self.output_shape),
            "unit": list(self.unit),
            "receptive_field": list(self.field.rf),
            "jump": list(self.field.jump or ()),
            "box": dict(zip(_SIDES, [_num(v) for v in self.box], strict=True)),
            "effective": {
                "inputs": self.inputs,
                "support_box": dict(zip(_SIDES, sb, strict=True)) if sb else None,
                "inside_theoretical": self.support_inside(),
            },
            "layers": [
                {
                    "name": r.name,
                    "type": r.type,
                    "what": r.what,
                    "receptive_field": list(r.rf),
                    "jump": [_num(v) for v in r.jump],
                }
                for r in self.layers
            ],
            "learned": self.learned,
        }


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(float(v), 4)


def _describe(module: nn.Module) -> str:
    """ "conv 3x3 d2", "maxpool 2x2 s2": the geometry that sets a layer's field, as a short label."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
        d = _pair(getattr(module, "dilation", 1), 1)
        kind = "conv" if isinstance(module, nn.Conv2d) else type(module).__name__[:3].lower() + "pool"
        extra = (f" s{s[0]}" if s[0] > 1 else "") + (f" d{d[0]}" if d[0] > 1 else "")
        return f"{kind} {k[0]}x{k[1]}{extra}"
    return type(module).__name__


def _layer_rows(summary: Any, model: nn.Module) -> list[LayerField]:
    rows: list[LayerField] = []
    last: tuple[Any, Any] | None = None
    for rec in summary.layers:
        f = rec.field
        if not rec.is_leaf or f is None or f.jump is None:
            continue
        if (f.rf, f.jump) != last:
            what = _describe(model.get_submodule(rec.name))
            rows.append(LayerField(rec.name, rec.type, f.rf, f.jump, what))
            last = (f.rf, f.jump)
    return rows


def _start_of(model: nn.Module, name: str, x: torch.Tensor) -> tuple[float, float] | None:
    tracker = FieldTracker()
    with torch.no_grad(), tracker, truncated_capture(model, name) as cap:
        tracker.mark_input(x)
        run_until(model, x)
    return tracker.start(cap.activations.get(name))


#: Bytes per input value of a view: the uint8 image, its normalised float copy, the leaf and its gradient.
_INPUT_BYTES = 1 + 3 * 4


def check_field_memory(
    model: nn.Module, input_size: tuple[int, ...], inputs: int, *, model_name: str = "model"
) -> None:
    """Refuse a :func:`receptive_field_view` over the memory budget, before its inputs are made.

    The estimate (a dry forward pass, shapes only) counts the inputs with their gradient, the forward
    pass kept for the backward one on all ``inputs`` images, and the summary's pass on one image.

    Args:
        model: The network.
        input_size: (C, H, W) of the inputs.
        inputs: How many images the effective field is averaged over.
        model_name: The model, as the user named it.

    Raises:
        CnnlabError: The estimate is over :func:`cnnlab.memory.memory_budget` (one line with both, and
            the fix).
    """
    from ..memory import check_memory, dry_forward

    probe = dry_forward(model, input_size)  # a layer the size does not fit may lie past the one drawn
    nbytes = (_INPUT_BYTES * inputs * math.prod(input_size) + probe.training_bytes(inputs, optimizer_states=0)
              + probe.activation_bytes)
    size = "x".join(map(str, input_size))
    check_memory(nbytes, f"the receptive field of {model_name} on {inputs:,} input(s) of {size}",
                 "use a smaller `input_size`, or fewer `samples`")


def noise_images(input_size: tuple[int, ...], count: int, *, seed: int = 0) -> torch.Tensor:
    """``count`` uniformly random uint8 images ``[count, C, H, W]`` (seeded): inputs without an image.

    Raises:
        ArgumentError: ``seed`` out of the seed range (:func:`cnnlab.values.check_seed`).
    """
    g = torch.Generator().manual_seed(check_seed(seed))
    return torch.randint(0, 256, (count, *input_size), generator=g, dtype=torch.uint8)


def receptive_field_view(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    layer: str = "auto",
    model_name: str = "model",
    inputs_label: str | None = None,
    learned: bool = True,
) -> ReceptiveFieldView:
    """The theoretical field (summary's number, placed on the input) and the effective field of a unit.

    Args:
        model: The network (run in eval mode; its mode is restored).
        inputs: Preprocessed inputs ``[N, C, H, W]`` the gradient is averaged over.
        layer: ``"auto"`` (the model's default CAM layer), a dotted name or ``Type:index``.
        model_name: Name used in messages and the figure.
        inputs_label: How to describe ``inputs`` (default "N input(s)").
        learned: Whether the weights were trained (said in the figure).

    Returns:
        A :class:`ReceptiveFieldView`.

    Raises:
        ModelArgumentError: The layer has no spatial field (flatten, global pooling: it sees everything).
    """
    from ..summary import summarize

    name, _ = resolve_layer(model, layer)
    size = tuple(int(v) for v in inputs.shape[1:])
    summary = summarize(model, size, model_name=model_name)
    try:
        rec = summary.layer(name)
    except KeyError:
        raise ModelArgumentError(
            f"layer {name!r} does not run in {model_name}'s forward pass", param="layer"
        ) from None
    f = rec.field
    if f is None or f.jump is None or len(rec.output_shape) != 3:
        raise ModelArgumentError(
            f"{name!r} ({rec.type}) has no spatial map: each of its units sees the whole input; "
            "choose a conv, pool or activation layer before the head",
            param="layer",
        )
    was_training = model.training
    model.eval()
    try:
        start = _start_of(model, name, inputs[:1])
        unit = (rec.output_shape[1] // 2, rec.output_shape[2] // 2)
        x = inputs.detach().clone().requires_grad_(True)
        with torch.enable_grad(), truncated_capture(model, name) as cap:
            run_until(model, x)
            act = cap.activations[name]
            (grad,) = torch.autograd.grad(act[:, :, unit[0], unit[1]].sum(), x)
    finally:
        model.train(was_training)
    if start is None:
        raise ModelArgumentError(f"{name!r}: its field cannot be placed on the input", param="layer")
    top, left = start[0] + unit[0] * f.jump[0], start[1] + unit[1] * f.jump[1]
    box = (top, left, top + f.rf[0] - 1, left + f.rf[1] - 1)
    n = inputs.shape[0]
    return ReceptiveFieldView(
        model_name=model_name,
        layer=name,
        input_size=size,  # type: ignore[arg-type]
        output_shape=tuple(rec.output_shape),
        unit=unit,
        field=f,
        box=box,
        erf=grad.detach().abs().sum(1).mean(0),
        inputs=inputs_label or f"{n} input{'s' if n != 1 else ''}",
        layers=_layer_rows(summary, model),
        learned=learned,
    )
