"""Scoped capture of layer activations and gradients (DESIGN.md: "Hooks are scoped").

Layer syntax, accepted everywhere a layer is named (``--layer`` on the CLI too):

* ``"features.3"`` — a dotted module name, as in ``model.get_submodule(name)``;
* ``"Conv2d:-1"`` — ``TypeName:index``: the index-th module (Python indexing, negative counts from
  the end) among the modules whose class is, or derives from, a class called ``TypeName``, in
  ``model.named_modules()`` order. ``"Conv2d:-1"`` is the last convolution, ``"ReLU:0"`` the first ReLU;
* ``"auto"`` — ``model.default_cam_layer`` (the model contract); for plain ``nn.Module`` s without it,
  the last ``Conv2d``.

A module that runs more than once in one forward pass (a shared ReLU) keeps the output of its last call.
Captured activations are copies: in-place operations after the layer (``ReLU(inplace=True)``) do not
change them.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ModelArgumentError, ModelError

__all__ = ["Capture", "capture", "layer_names", "resolve_layer"]


def layer_names(model: nn.Module) -> list[str]:
    """Dotted names of every submodule of ``model`` (the root excluded), in definition order."""
    return [name for name, _ in model.named_modules() if name]


def _unknown_layer(model: nn.Module, spec: str, why: str) -> ModelError:
    names = layer_names(model)
    close = difflib.get_close_matches(spec, names, n=5, cutoff=0.5)
    rest = [n for n in names if n not in close]
    shown = close + rest[: max(0, 25 - len(close))]
    more = f", … ({len(names) - len(shown)} more)" if len(names) > len(shown) else ""
    return ModelArgumentError(
        f"layer {spec!r} {why} in {type(model).__name__}; use a dotted name, TypeName:index (e.g. Conv2d:-1) "
        f"or auto. Valid names{' (closest first)' if close else ''}: {', '.join(shown)}{more}"
    )


def resolve_layer(model: nn.Module, spec: str) -> tuple[str, nn.Module]:
    """Turn a layer spec (see the module docstring) into ``(dotted_name, module)``.

    Args:
        model: The network.
        spec: ``"auto"``, a dotted name or ``"TypeName:index"``.

    Returns:
        The dotted name and the module.

    Raises:
        ModelError: listing the valid names (closest matches first) when the layer does not exist.
    """
    if spec == "auto":
        default = getattr(model, "default_cam_layer", None)
        return resolve_layer(model, default if isinstance(default, str) and default else "Conv2d:-1")
    if ":" in spec:
        type_name, _, index_text = spec.rpartition(":")
        try:
            index = int(index_text)
        except ValueError:
            raise _unknown_layer(model, spec, "has a non-integer index") from None
        matches = [
            (name, m)
            for name, m in model.named_modules()
            if name and any(cls.__name__ == type_name for cls in type(m).__mro__)
        ]
        if not matches:
            raise _unknown_layer(model, spec, f"matches no module of type {type_name}")
        if not -len(matches) <= index < len(matches):
            raise ModelArgumentError(
                f"layer {spec!r}: index {index} out of range, {type(model).__name__} has {len(matches)} "
                f"{type_name} modules (use {type_name}:0 .. {type_name}:{len(matches) - 1} or {type_name}:-1)"
            )
        return matches[index]
    modules = dict(model.named_modules())
    if spec and spec in modules:
        return spec, modules[spec]
    raise _unknown_layer(model, spec, "does not exist")


@dataclass
class Capture:
    """What :func:`capture` recorded, by the layer spec the caller passed.

    Attributes:
        names: Layer spec -> resolved dotted name.
        activations: Layer spec -> output of that layer in the last forward pass.
        gradients: Layer spec -> gradient of the backward pass w.r.t. that output (``gradients=True``).
    """

    names: dict[str, str] = field(default_factory=dict)
    activations: dict[str, torch.Tensor] = field(default_factory=dict)
    gradients: dict[str, torch.Tensor] = field(default_factory=dict)


def _first_tensor(spec: str, output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    raise ModelError(
        f"layer {spec!r} returns {type(output).__name__}, not a tensor; choose a layer with a tensor output"
    )


@contextlib.contextmanager
def capture(
    model: nn.Module, layers: str | Sequence[str], *, gradients: bool = False
) -> Iterator[Capture]:
    """Record the outputs (and, optionally, output gradients) of some layers while the block runs.

    The hooks are removed when the block exits, also when it raises.

    Args:
        model: The network.
        layers: One layer spec or several (see the module docstring).
        gradients: Also record the gradient w.r.t. each output when a backward pass runs inside the
            block (the forward pass must run with grad enabled). Activations are then kept attached
            to the graph (``.detach()`` them to keep).

    Yields:
        A :class:`Capture`, filled as forward/backward passes run.

    Raises:
        ModelError: when a layer does not exist (listing the valid names).

    Example:
        >>> with capture(model, ["features.0", "Conv2d:-1"]) as cap:
        ...     model(x)
        >>> cap.activations["Conv2d:-1"].shape
    """
    specs = [layers] if isinstance(layers, str) else list(layers)
    resolved = [(spec, *resolve_layer(model, spec)) for spec in specs]
    cap = Capture(names={spec: name for spec, name, _ in resolved})
    handles: list[Any] = []

    def make_hook(spec: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
            out = _first_tensor(spec, output)
            if gradients and out.requires_grad:
                cap.activations[spec] = out

                def store(grad: torch.Tensor) -> None:
                    cap.gradients[spec] = grad

                out.register_hook(store)
                return out.clone()  # later in-place ops then change the clone, not the recorded output
            cap.activations[spec] = out.detach().clone()
            return None

        return hook

    try:
        for spec, _, module in resolved:
            handles.append(module.register_forward_hook(make_hook(spec)))
        yield cap
    finally:
        for h in handles:
            h.remove()


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once every needed layer has run."""


@contextlib.contextmanager
def leaf_capture(model: nn.Module, layer: str) -> Iterator[Capture]:
    """Capture one layer's output as a fresh autograd leaf: only what follows it is differentiated.

    Everything before the layer should run under ``torch.no_grad()``; the hook switches grad mode on,
    so that the rest of the forward pass records the (small) graph from the layer to the output.
    ``torch.autograd.grad(score, cap.activations[layer])`` then gives d score / d activation without
    touching any parameter ``.grad``. The caller restores grad mode (``with torch.no_grad()`` does).
    Internal to the CAM and filter-visualisation code.
    """
    name, module = resolve_layer(model, layer)
    cap = Capture(names={layer: name})

    def hook(mod: nn.Module, inputs: Any, output: Any) -> Any:
        leaf = _first_tensor(layer, output).detach().requires_grad_(True)
        cap.activations[layer] = leaf
        torch.set_grad_enabled(True)
        return leaf.clone()  # a following in-place op (ReLU(inplace=True)) must not touch the leaf

    handle = module.register_forward_hook(hook)
    try:
        yield cap
    finally:
        handle.remove()


@contextlib.contextmanager
def truncated_capture(model: nn.Module, layer: str) -> Iterator[Capture]:
    """Capture one layer's output (attached to the graph) and stop the forward pass right there.

    Use as ``with truncated_capture(m, "features.3") as cap: run_until(m, x)``; layers after the one
    captured never run. Internal to filter visualisation and the feature-map views.
    """
    name, module = resolve_layer(model, layer)
    cap = Capture(names={layer: name})

    def hook(mod: nn.Module, inputs: Any, output: Any) -> Any:
        cap.activations[layer] = _first_tensor(layer, output)
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        yield cap
    finally:
        handle.remove()


def run_until(model: nn.Module, x: torch.Tensor) -> None:
    """Run ``model(x)`` inside :func:`truncated_capture`, swallowing only its own stop signal."""
    with contextlib.suppress(_StopForward):
        model(x)
