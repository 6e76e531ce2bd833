"""A dry forward pass and one memory budget: absurd sizes are refused before anything is allocated.

:func:`dry_forward` runs a model on a *meta* tensor (shapes only: no memory, no arithmetic), with the
model's parameters swapped for meta copies by :func:`torch.func.functional_call`, so it costs the same
at 28x28 and at 100000x100000. It returns every layer's output shape, an estimate of the activation
memory of one image, and, when the input does not fit, the layer where it fails.

:func:`check_memory` compares an estimate with the budget, ``CNNLAB_MAX_MEMORY_GB`` gigabytes (GiB),
by default half of this machine's memory; over it, one line says how much is needed, the budget, what
to lower and how to raise the budget. Training (``train --img-size``, ``--batch-size``), ``summary
--input`` and ``dream --size`` / ``--filters`` go through it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import CnnlabError, ModelError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ENV_MAX_MEMORY", "ForwardProbe", "check_memory", "dry_forward", "fit_error", "memory_budget"]

#: Environment variable: the memory budget in GiB.
ENV_MAX_MEMORY = "CNNLAB_MAX_MEMORY_GB"
_GIB = 2**30
#: Phrases of PyTorch's shape errors that mean "the image got too small for this layer".
_TOO_SMALL = ("too small", "can't be greater", "larger than", "kernel size", "padded input")


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):  # not POSIX: no answer
        return None


def memory_budget() -> tuple[int, str]:
    """The budget in bytes and where it comes from (for the message).

    Raises:
        CnnlabError: ``CNNLAB_MAX_MEMORY_GB`` is set to something that is not a positive number.
    """
    from .values import env_number

    text = os.environ.get(ENV_MAX_MEMORY, "").strip()
    if text:
        value = env_number(ENV_MAX_MEMORY, default=math.nan, low=0, low_open=True, unit="gigabytes (GiB)")
        return int(value * _GIB), f"{ENV_MAX_MEMORY}={text}"
    total = _physical_memory()
    if total is None:
        return 8 * _GIB, "the default of 8 GiB"
    return total // 2, "half of this machine's memory"


def _gib(nbytes: float) -> str:
    return f"{nbytes / _GIB:,.1f} GiB" if nbytes >= 0.1 * _GIB else f"{nbytes / 2**20:,.0f} MiB"


def check_memory(nbytes: float, what: str, fix: str) -> None:
    """Refuse work whose memory estimate is over :func:`memory_budget`.

    Args:
        nbytes: Estimated bytes.
        what: What needs them, e.g. "training cats_cnn on 3x4000x4000 images, 64 per batch".
        fix: What to lower, in library terms, e.g. "lower `img_size` or `batch_size`".

    Raises:
        CnnlabError: One line with the estimate, the budget, the fix and how to raise the budget.
    """
    budget, source = memory_budget()
    if nbytes > budget:
        need = max(1, math.ceil(nbytes / _GIB))
        raise CnnlabError(
            f"{what} needs about {_gib(nbytes)}, over the memory budget of {_gib(budget)} ({source}); "
            f"{fix}, or raise the budget with {ENV_MAX_MEMORY}={need}"
        )


@dataclass
class ForwardProbe:
    """What a dry forward pass found.

    Attributes:
        input_shape: The (C, H, W) it ran on.
        shapes: Output shape (batch dimension dropped) of every module that ran, by dotted name.
        activation_bytes: Bytes of all leaf-module outputs for one image (float32 as the model's dtype).
        peak_bytes: Bytes of the largest single leaf-module output for one image.
        param_bytes: Bytes of the parameters.
        failed: ``(layer name, layer type, its input shape, PyTorch's message)`` where the input did not
            fit, else None.
    """

    input_shape: tuple[int, ...]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    activation_bytes: int = 0
    peak_bytes: int = 0
    param_bytes: int = 0
    failed: tuple[str, str, tuple[int, ...] | None, str] | None = None

    def training_bytes(self, batch: int, *, optimizer_states: int = 2, backward: bool = True) -> int:
        """Estimated memory of one training step on ``batch`` images.

        With ``backward`` the activations are kept for the backward pass (their gradients are freed as it
        goes, so two of the largest are live at once) and the parameters come with their gradients and
        ``optimizer_states`` tensors each (Adam: 2). Measured peak RSS of one Adam step at batch 64:
        efficientnet_lite0 at 224 px 5.1 GiB (this estimate 6.0), cats_cnn at 150 px 0.66 GiB (0.65).
        Without ``backward`` (a frozen backbone run once under ``no_grad``) only an input and an output
        of the largest layer are live.
        """
        if not backward:
            return 2 * batch * self.peak_bytes + self.param_bytes
        params = (2 + optimizer_states) * self.param_bytes
        return batch * (self.activation_bytes + 2 * self.peak_bytes) + params


def _first_tensor(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)):
        return next((v for v in map(_first_tensor, value) if v is not None), None)
    if isinstance(value, dict):
        return next((v for v in map(_first_tensor, value.values()) if v is not None), None)
    return None


def dry_forward(model: nn.Module, input_shape: tuple[int, ...]) -> ForwardProbe:
    """Run ``model`` on one meta image of ``input_shape``: shapes and memory, nothing computed.

    Args:
        model: Any network; its weights, mode and hooks are left as they are.
        input_shape: (C, H, W).

    Returns:
        A :class:`ForwardProbe`; ``failed`` is set when the input does not fit a layer.

    Raises:
        CnnlabError: A side over :data:`cnnlab.values.MAX_SIZE` (no tensor, not even a meta one, has it).
    """
    import torch
    from torch.func import functional_call

    from .values import MAX_SIZE

    probe = ForwardProbe(tuple(int(v) for v in input_shape))
    if max(probe.input_shape, default=0) > MAX_SIZE:
        size = "x".join(map(str, probe.input_shape))
        raise CnnlabError(f"an input of {size}: a side over {MAX_SIZE:,} pixels cannot be held in memory; "
                          "use a smaller size")
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    meta = {k: torch.empty_like(v, device="meta") for k, v in tensors.items()}
    probe.param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    names = {id(m): n for n, m in model.named_modules()}
    last: list[tuple[nn.Module, tuple[int, ...] | None]] = []

    def pre_hook(m: nn.Module, args: tuple[Any, ...]) -> None:
        if not any(m.children()):
            first = _first_tensor(args)
            last[:] = [(m, tuple(first.shape[1:]) if first is not None else None)]

    def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        first = _first_tensor(out)
        if first is None:
            return
        probe.shapes[names.get(id(m), "?")] = tuple(first.shape[1:])
        if not any(m.children()):
            nbytes = first[:1].numel() * first.element_size()
            probe.activation_bytes += nbytes
            probe.peak_bytes = max(probe.peak_bytes, nbytes)

    handles = [h for m in model.modules()
               for h in (m.register_forward_pre_hook(pre_hook), m.register_forward_hook(hook))]
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    try:
        functional_call(model, meta, (torch.empty((1, *probe.input_shape), device="meta", dtype=dtype),))
    except (RuntimeError, ValueError, IndexError) as exc:  # PyTorch's shape errors
        text = str(exc).strip()
        detail = text.splitlines()[0] if text else type(exc).__name__
        module, shape = last[0] if last else (model, None)
        in_features = getattr(module, "in_features", None)
        if isinstance(in_features, int) and shape:  # a Linear layer: say it in its own terms
            detail = f"takes {in_features:,} values, gets {math.prod(shape):,}"
        probe.failed = (names.get(id(module), "?"), type(module).__name__, shape, detail)
    finally:
        for h in handles:
            h.remove()
    return probe


def fit_error(
    probe: ForwardProbe, *, model_name: str, what: str, fix_small: str, fix_other: str
) -> ModelError | None:
    """The one-line error for a :func:`dry_forward` that failed (None when it did not).

    Args:
        probe: The probe.
        model_name: The model, as the user named it.
        what: The input, e.g. "the data's 3x150x150 images".
        fix_small: The fix when the input is too small for the layers, in library terms.
        fix_other: The fix when it does not fit otherwise (a dense layer sized for another input).
    """
    if probe.failed is None:
        return None
    name, typ, shape, detail = probe.failed
    shape_txt = "x".join(map(str, shape)) if shape else "?"
    if any(s in detail.lower() for s in _TOO_SMALL):
        return ModelError(f"{what} are too small for {model_name}: the size runs out at layer {name} "
                          f"({typ}), whose input is {shape_txt}; {fix_small}")
    fails = detail if detail.startswith("takes ") else f"fails on its input {shape_txt} ({detail})"
    return ModelError(f"{what} do not fit {model_name}: layer {name} ({typ}) {fails}; {fix_other}")
