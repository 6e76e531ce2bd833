"""Measuring a model: torchinfo's shapes, params and mult-adds, plus the receptive field of every layer.

torchinfo runs the forward pass (its numbers are used as they are, nothing is re-counted); the same
pass runs under :class:`~cnnlab.receptive.tracker.FieldTracker`, and forward hooks read the field of
every module's output. The result is a :class:`~cnnlab.summary.records.ModelSummary`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import ModelArgumentError, ModelError
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


def _check_head_memory(target: str, num_classes: int, input_size: tuple[int, ...] | None) -> None:
    """A classifier of ``num_classes`` outputs would be allocated: built on the meta device first."""
    from pathlib import Path

    from ..memory import check_memory
    from ..models import create_model
    from ..models._registry import get_entry

    if Path(target).exists():  # a run folder or weights file: its own outputs
        return
    entry = get_entry(target)
    in_chans = input_size[0] if input_size is not None and entry.sized_by_input else None
    with torch.device("meta"):  # the architecture alone: no memory, no class names
        model = create_model(target, num_classes=num_classes, in_chans=in_chans)
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    check_memory(nbytes, f"{target} with {num_classes:,} outputs", "give fewer `num_classes`")


def summarize_model(target: str, *, input_size: tuple[int, ...] | None = None,
                    num_classes: int | None = None) -> ModelSummary:
    """The summary of what a user names: a run folder, a registry name, a layer spec or a weights file.

    The model is resolved as every command resolves it (:func:`cnnlab.source.resolve_model`, random
    weights: the numbers do not depend on them); a classifier or an input over the memory budget is
    refused on the meta device before anything is allocated.

    Args:
        target: What to summarise.
        input_size: (C, H, W), or (C, L) for a 1-D model; default: the model's own input size.
        num_classes: Classifier outputs (registry models and layer specs).

    Returns:
        The summary, its model named as the user named it (a run: its model and folder).
    """
    from ..memory import check_memory, dry_forward
    from ..source import resolve_model
    from ..values import MAX_SIZE

    if num_classes is not None and num_classes < 1:
        raise ModelArgumentError(f"{num_classes}: a classifier needs at least 1 output", param="num_classes")
    if num_classes is not None and num_classes > MAX_SIZE:
        raise ModelArgumentError(f"{num_classes}: must be at most {MAX_SIZE:,}", param="num_classes")
    if num_classes is not None:
        _check_head_memory(target, num_classes, input_size)
    src = resolve_model(target, pretrained=False, num_classes=num_classes, input_size=input_size)
    name = f"{src.run.config.model} ({src.label})" if src.run is not None else src.label
    dims = input_size or src.image_size
    probe = dry_forward(src.model, dims)  # the summary runs the model once on a zero image
    check_memory(probe.activation_bytes + 4 * math.prod(dims),
                 f"summarising {name} on a {'x'.join(map(str, dims))} input", "use a smaller `input_size`")
    return summarize(src.model, dims, model_name=name)
