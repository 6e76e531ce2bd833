"""Measuring a model: torchinfo's shapes, params and mult-adds, plus the receptive field of every layer.

torchinfo runs the forward pass (its numbers are used as they are, nothing is re-counted); the same
pass runs under :class:`~cnnlab.receptive.tracker.FieldTracker`, and forward hooks read the field of
every module's output. The result is a :class:`~cnnlab.summary.records.ModelSummary`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ModelError
from ..receptive.tracker import FieldTracker
from .records import LayerRecord, ModelSummary


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
