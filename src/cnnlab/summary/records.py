"""Layer records -> model statistics: torchinfo's shapes, params and mult-adds, plus receptive fields.

torchinfo runs the forward pass (its numbers are used as they are, nothing is re-counted); the same
pass runs under :class:`~cnnlab.summary.receptive.FieldTracker`, and forward hooks read the field of
every module's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ModelError
from .receptive import Field, FieldTracker


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(float(v), 4)


def _pair_out(p: tuple[Any, Any] | None) -> int | float | list[int | float] | None:
    """A square (rows == cols) value as one number, else [rows, cols]; None stays None."""
    if p is None:
        return None
    a, b = _num(p[0]), _num(p[1])
    return a if a == b else [a, b]


@dataclass
class LayerRecord:
    """One row of the summary (one call of one module, as torchinfo lists it).

    Attributes:
        name: Dotted module name (``model.get_submodule(name)``); "" is the model itself.
        type: Module class name.
        depth: Nesting depth (0 = the model).
        is_leaf: The module has no children.
        output_shape: Output shape without the batch dimension.
        params: Parameters of the module (with its children), as torchinfo counts them.
        trainable_params: Of those, the ones with ``requires_grad``.
        mult_adds: torchinfo's mult-adds of the module (leaf layers; 0 for containers).
        field: Receptive field and jump of the output (None when not modelled).
        recursive: The module was already listed (called again); its params are not counted twice.
    """

    name: str
    type: str
    depth: int
    is_leaf: bool
    output_shape: list[int]
    params: int
    trainable_params: int
    mult_adds: int
    field: Field | None
    recursive: bool = False

    @property
    def frozen_params(self) -> int:
        """Parameters with ``requires_grad=False``."""
        return self.params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``receptive_field``/``jump`` are numbers when square, else ``[rows, cols]``."""
        f = self.field
        return {
            "name": self.name,
            "type": self.type,
            "depth": self.depth,
            "output_shape": self.output_shape,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
            "mult_adds": self.mult_adds,
            "receptive_field": _pair_out(f.rf) if f else None,
            "jump": _pair_out(f.jump) if f else None,
            "global": bool(f and f.is_global),
        }


@dataclass
class ModelSummary:
    """What :func:`summarize` returns: totals from torchinfo and one :class:`LayerRecord` per row."""

    model_name: str
    input_size: tuple[int, ...]
    total_params: int
    trainable_params: int
    mult_adds: int
    layers: list[LayerRecord] = field(default_factory=list)

    @property
    def frozen_params(self) -> int:
        """Total parameters with ``requires_grad=False``."""
        return self.total_params - self.trainable_params

    def layer(self, name: str) -> LayerRecord:
        """The first row of the module named ``name``."""
        for rec in self.layers:
            if rec.name == name:
                return rec
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The stable ``--json`` form.

        ``{"model", "input_size", "total_params", "trainable_params", "frozen_params", "mult_adds",
        "layers": [{"name", "type", "depth", "output_shape", "params", "trainable_params", "frozen_params",
        "mult_adds", "receptive_field", "jump", "global"}]}`` (the model's own row is left out).
        """
        return {
            "model": self.model_name,
            "input_size": list(self.input_size),
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
            "mult_adds": self.mult_adds,
            "layers": [r.to_dict() for r in self.layers if r.depth > 0],
        }

    def _repr_html_(self) -> str:
        """The summary table in a notebook (:func:`~cnnlab.summary.format.summary_html`)."""
        from .format import summary_html

        return summary_html(self)


def _shape_str(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _too_small(
    model_name: str, input_size: tuple[int, ...], where: tuple[str, str, Any] | None, exc: BaseException
) -> ModelError:
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    detail = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
    size = _shape_str(input_size)
    if where is None:
        return ModelError(f"{size}: {model_name} cannot run on it ({detail})", param="input_size")
    name, typ, shape = where
    shape_txt = _shape_str(tuple(shape[1:])) if shape is not None else "?"
    low = detail.lower()
    if any(s in low for s in ("too small", "can't be greater", "larger than", "kernel size", "padded input")):
        return ModelError(
            f"{size} is too small for {model_name}: the size runs out at layer {name} ({typ}), "
            f"whose input is {shape_txt}; use a larger `input_size`",
            param="input_size",
        )
    return ModelError(
        f"{size} does not fit {model_name}: layer {name} ({typ}) fails on its input {shape_txt} "
        f"({detail}); use the model's input size",
        param="input_size",
    )


def summarize(
    model: nn.Module,
    input_size: tuple[int, int, int] | tuple[int, ...],
    *,
    device: str = "cpu",
    model_name: str | None = None,
) -> ModelSummary:
    """Shapes, params, mult-adds (torchinfo) plus receptive field, jump and frozen params per layer.

    Args:
        model: Any ``nn.Module``; it runs in eval mode (torchinfo restores its mode afterwards).
        input_size: (C, H, W) of one input (batch size 1 is used, so mult-adds are per image).
        device: Where to run the forward pass.
        model_name: Name used in messages (default: the class name).

    Returns:
        The :class:`ModelSummary`.

    Raises:
        ModelError: The input is too small (naming the layer where the size runs out) or does not fit.
    """
    from torchinfo import summary as ti_summary

    name = model_name or type(model).__name__
    input_size = tuple(int(v) for v in input_size)
    names: dict[int, str] = {}
    for n, m in model.named_modules():
        names.setdefault(id(m), n)
    x = torch.zeros((1, *input_size), device=device)
    outputs: dict[int, list[Any]] = {}
    last: list[tuple[str, str, Any]] = []

    def pre_hook(m: nn.Module, args: tuple[Any, ...]) -> None:
        if not any(m.children()):
            shp = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else None
            last[:] = [(names.get(id(m), "?"), type(m).__name__, shp)]

    def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        outputs.setdefault(id(m), []).append(out)

    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre_hook))
        handles.append(m.register_forward_hook(hook))
    tracker = FieldTracker()
    try:
        with tracker:
            tracker.mark_input(x)
            stats = ti_summary(model, input_data=[x], device=device, verbose=0, depth=100, mode="eval")
            fields = {
                k: [tracker.field(o if isinstance(o, torch.Tensor) else _first_tensor(o)) for o in v]
                for k, v in outputs.items()
            }
    except RuntimeError as exc:
        raise _too_small(name, input_size, last[0] if last else None, exc) from None
    finally:
        for h in handles:
            h.remove()
    calls: dict[int, int] = {}
    records = []
    for info in stats.summary_list:
        k = calls.get(info.layer_id, 0)
        calls[info.layer_id] = k + 1
        flist = fields.get(info.layer_id, [])
        out_shape = list(info.output_size[1:]) if info.output_size else []
        records.append(
            LayerRecord(
                name=names.get(info.layer_id, info.var_name or ""),
                type=info.class_name,
                depth=info.depth,
                is_leaf=info.is_leaf_layer,
                output_shape=out_shape,
                params=max(info.num_params, 0),
                trainable_params=max(info.trainable_params, 0),
                mult_adds=max(int(info.macs), 0),
                field=flist[k] if k < len(flist) else None,
                recursive=bool(info.is_recursive),
            )
        )
    for rec in records:  # torchinfo's container mult-adds are not meaningful: use the sum of its leaves
        if not rec.is_leaf:
            prefix = f"{rec.name}." if rec.name else ""
            rec.mult_adds = sum(r.mult_adds for r in records if r.is_leaf and r.name.startswith(prefix))
    return ModelSummary(
        name,
        input_size,
        int(stats.total_params),
        int(stats.trainable_params),
        int(stats.total_mult_adds),
        records,
    )


def _first_tensor(o: Any) -> torch.Tensor | None:
    from torch.utils._pytree import tree_flatten

    return next((t for t in tree_flatten(o)[0] if isinstance(t, torch.Tensor)), None)
