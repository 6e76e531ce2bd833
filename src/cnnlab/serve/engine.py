"""The model behind the page: loaded once, run by one request at a time.

Every computation that touches the model (predictions, CAM, feature maps, one unit's inputs) holds
:attr:`Engine.lock`: the CAM code and the explorer add forward hooks to the shared model for the length
of a call, so two calls at once would see each other's hooks. Decoding uploads and encoding images run
outside the lock, in parallel with the model.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import ArgumentError
from ..images import PixelBudget, max_image_pixels
from ..interpret.cam import CamResult, explain
from ..interpret.hooks import capture, resolve_layer, run_until, truncated_capture
from ..interpret.targets import parse_target
from ..receptive.units import Stage, conv_stages
from ..summary import summarize
from ..train.evaluate import probabilities
from .uploads import DecodeSlots, decode_slots

if TYPE_CHECKING:
    from ..source import ModelSource
    from ..summary import ModelSummary
    from .uploads import Photo

__all__ = ["Engine", "UnitInputs"]


@dataclass
class UnitInputs:
    """What one unit of a stage computes from and how much each input channel gives it.

    Attributes:
        value: The unit's activation.
        inputs: [C_in, h, w] the stage's input for this photo.
        contributions: [C_in] gradient x input of the unit, summed over each input channel (for a
            linear stage these add up to the unit's value minus its bias).
    """

    value: float
    inputs: torch.Tensor
    contributions: torch.Tensor


class Engine:
    """A :class:`~cnnlab.source.ModelSource` with its explorer stages, summary and lock.

    Args:
        source: The resolved model (a run folder, a registry model, ...).
    """

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self.model: nn.Module = source.model.eval()
        self.lock = threading.Lock()
        self.budget = PixelBudget(max_image_pixels())
        self.slots = DecodeSlots(decode_slots(max_image_pixels()))
        self.device = next(self.model.parameters()).device
        size = source.image_size
        self.stages: list[Stage] = conv_stages(self.model, size)  # type: ignore[arg-type]  # images only
        self.summary: ModelSummary = summarize(self.model, size, device=str(self.device),
                                               model_name=source.label)
        self.cam_layer = resolve_layer(self.model, "auto")[0]
        self._stage = {s.name: s for s in self.stages}

    def stage(self, name: str) -> Stage:
        """The explorer stage called ``name`` (ArgumentError listing them otherwise)."""
        if name not in self._stage:
            raise ArgumentError(f"{name!r}: not a layer of the explorer; use one of {', '.join(self._stage)}",
                                param="layer")
        return self._stage[name]

    def target(self, text: str | None) -> int | None:
        """A class name or index -> index; None or "" -> None (the predicted class): :func:`parse_target`."""
        return parse_target(text, self.source.classes)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``[N, classes]`` (a one-logit model gives ``[1 - p, p]``)."""
        return probabilities(self.source, logits.float().cpu())

    def logits(self, photo: Photo) -> torch.Tensor:
        """The model's output for the photo ``[1, outputs]``."""
        with self.lock, torch.no_grad():
            return self.model(photo.x.to(self.device)).cpu()

    def explain(self, photo: Photo, *, method: str, target: int | None, layer: str) -> CamResult:
        """A CAM of the photo at input resolution (:func:`cnnlab.interpret.explain`)."""
        with self.lock:
            return explain(self.model, photo.x.to(self.device), target=target, layer=layer, method=method)

    def activations(self, photo: Photo, names: list[str]) -> dict[str, torch.Tensor]:
        """Outputs ``[K, h, w]`` of the named stages for the photo (one forward pass)."""
        with self.lock, torch.no_grad(), capture(self.model, names) as cap:
            self.model(photo.x.to(self.device))
        return {n: cap.activations[n][0].cpu() for n in names}

    def unit(self, photo: Photo, name: str, channel: int, row: int, col: int) -> UnitInputs:
        """The inputs of unit (channel, row, col) of stage ``name`` and their gradient x input.

        The forward pass stops after the stage; the stage's input is a fresh autograd leaf, so one
        ``torch.autograd.grad`` differentiates the stage alone.
        """
        stage = self.stage(name)
        k, h, w = stage.shape
        for what, v, n in (("channel", channel, k), ("row", row, h), ("col", col, w)):
            if not 0 <= v < n:
                raise ArgumentError(f"{v}: layer {name} has {n}; use 0..{n - 1}", param=what)
        module = self.model.get_submodule(name)
        leaves: list[torch.Tensor] = []

        def pre_hook(mod: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
            leaf = args[0].detach().requires_grad_(True)
            leaves.append(leaf)
            torch.set_grad_enabled(True)  # only the stage itself is recorded
            return (leaf.clone(), *args[1:])  # a clone: the stage may work in place on its input

        with self.lock:
            handle = module.register_forward_pre_hook(pre_hook)
            try:
                with torch.no_grad(), truncated_capture(self.model, name) as cap:
                    run_until(self.model, photo.x.to(self.device))
                    value = cap.activations[name][0, channel, row, col]
                    (grad,) = torch.autograd.grad(value, leaves[0])
            finally:
                handle.remove()
        inputs = leaves[0].detach()[0].cpu()
        return UnitInputs(float(value.detach()), inputs, (grad[0].cpu() * inputs).sum((1, 2)))
