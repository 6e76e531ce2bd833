"""Feature maps: what one layer outputs, per channel, for one or several images.

All functions run the model in eval mode under ``no_grad`` and stop the forward pass at the layer
(the rest of the network never runs). Layers use the syntax of :mod:`cnnlab.interpret.hooks`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import CnnlabError, ModelError
from .hooks import resolve_layer, run_until, truncated_capture

__all__ = [
    "DeadFilters",
    "FeatureMaps",
    "channel_across_images",
    "dead_filters",
    "feature_maps",
    "layer_activations",
]


def layer_activations(model: nn.Module, images: torch.Tensor, layer: str) -> torch.Tensor:
    """The output of ``layer`` for a batch of preprocessed images.

    Args:
        model: The network.
        images: Float images ``[N, C, H, W]`` (or one image ``[C, H, W]``).
        layer: Layer spec.

    Returns:
        The layer's output ``[N, K, h, w]`` (any shape the layer returns).
    """
    if images.ndim == 3:
        images = images[None]
    name, _ = resolve_layer(model, layer)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), truncated_capture(model, layer) as cap:
            run_until(model, images)
    finally:
        model.train(was_training)
    if layer not in cap.activations:
        raise ModelError(f"--layer {name!r} never ran in forward; choose a layer on the path to the logits")
    return cap.activations[layer].detach()


@dataclass
class FeatureMaps:
    """All channels of one layer for one image.

    Attributes:
        layer: Dotted name of the layer.
        maps: [K, h, w] activations.
        dead: [K] True where the channel is <= 0 everywhere (nothing passes a following ReLU).
        zero: [K] True where the channel is exactly zero everywhere.
    """

    layer: str
    maps: torch.Tensor
    dead: torch.Tensor
    zero: torch.Tensor


def _spatial(act: torch.Tensor, layer: str) -> torch.Tensor:
    if act.ndim != 4:
        raise ModelError(
            f"--layer {layer!r} outputs shape {tuple(act.shape)}, not feature maps [N, K, h, w]; "
            "choose a convolutional layer"
        )
    return act


def feature_maps(model: nn.Module, image: torch.Tensor, layer: str) -> FeatureMaps:
    """All channels of ``layer`` for one preprocessed image ``[C, H, W]`` (or ``[1, C, H, W]``)."""
    if image.ndim == 4 and image.shape[0] != 1:
        raise CnnlabError(f"image: expected one image, got a batch of {image.shape[0]}; pass image[i]")
    name, _ = resolve_layer(model, layer)
    act = _spatial(layer_activations(model, image, layer), name)[0]
    flat = act.flatten(1)
    return FeatureMaps(name, act, flat.amax(1) <= 0, flat.abs().amax(1) == 0)


def channel_across_images(model: nn.Module, images: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    """One channel of ``layer`` for several images: ``[N, h, w]``."""
    name, _ = resolve_layer(model, layer)
    act = _spatial(layer_activations(model, images, layer), name)
    if not 0 <= channel < act.shape[1]:
        k = act.shape[1]
        raise CnnlabError(f"--channel {channel}: layer {name!r} has {k} channels; use 0..{k - 1}")
    return act[:, channel]


@dataclass
class DeadFilters:
    """Dying-ReLU flags of one layer over a set of inputs.

    Attributes:
        layer: Dotted name of the layer.
        dead: [K] True where the channel is <= 0 for every input and position.
        zero: [K] True where the channel is exactly zero for every input and position.
        active_fraction: [K] fraction of (input, position) values > 0.
    """

    layer: str
    dead: torch.Tensor
    zero: torch.Tensor
    active_fraction: torch.Tensor


def dead_filters(model: nn.Module, images: torch.Tensor, layer: str) -> DeadFilters:
    """Flag the channels of ``layer`` that never activate on ``images`` (dying ReLU)."""
    name, _ = resolve_layer(model, layer)
    act = _spatial(layer_activations(model, images, layer), name)
    per_channel = act.transpose(0, 1).flatten(1)  # [K, N*h*w]
    return DeadFilters(
        name,
        per_channel.amax(1) <= 0,
        per_channel.abs().amax(1) == 0,
        (per_channel > 0).float().mean(1),
    )
