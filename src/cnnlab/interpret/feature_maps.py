"""Feature maps: what one layer outputs, per channel, for one or several images.

All functions run the model in eval mode under ``no_grad`` and stop the forward pass at the layer
(the rest of the network never runs). Layers use the syntax of :mod:`cnnlab.interpret.hooks`, except
``"auto"`` (:data:`AUTO_LAYER`, the default here), which means the first *post-activation* spatial map:
the output of the first activation module (ReLU, GELU, SiLU, ... see :data:`ACTIVATIONS`) that returns
``[N, K, h, w]`` in the forward pass — what the network passes on, not the raw convolution. Models
without activation modules (``F.relu`` in ``forward``) fall back to the first ``Conv2d``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..errors import CnnlabError, ModelError
from .hooks import _StopForward, resolve_layer, run_until, truncated_capture

__all__ = [
    "ACTIVATIONS",
    "AUTO_LAYER",
    "DeadFilters",
    "FeatureMaps",
    "MapScale",
    "channel_across_images",
    "dead_filters",
    "feature_maps",
    "layer_activations",
    "normalise_maps",
    "resolve_feature_layer",
]

#: The default layer spec of the feature-map views: the first post-activation spatial map.
AUTO_LAYER = "auto"
#: Module types counted as activations when resolving :data:`AUTO_LAYER`.
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
)
#: How :func:`normalise_maps` scales channels: each on its own, or one scale for the whole layer.
MapScale = Literal["channel", "layer"]


def resolve_feature_layer(model: nn.Module, images: torch.Tensor, layer: str = AUTO_LAYER) -> str:
    """The dotted name of a feature-map layer spec; ``"auto"`` is the first post-activation spatial map.

    ``"auto"`` runs the forward pass on ``images`` only until the first activation module whose output is
    4-D (modules of :data:`ACTIVATIONS` and their subclasses, in execution order; a module called twice
    counts where it first runs). Without one it falls back to ``"Conv2d:0"``.

    Args:
        model: The network.
        images: Float images ``[N, C, H, W]`` or ``[C, H, W]`` (only their shape and the path matter).
        layer: ``"auto"``, or any spec of :func:`cnnlab.interpret.hooks.resolve_layer`.

    Returns:
        The dotted module name.

    Raises:
        ModelError: an unknown layer, or "auto" on a model with neither an activation map nor a Conv2d.
    """
    if layer != AUTO_LAYER:
        return resolve_layer(model, layer)[0]
    found: list[str] = []

    def make_hook(name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and output.ndim == 4:
                found.append(name)
                raise _StopForward

        return hook

    handles = [m.register_forward_hook(make_hook(name)) for name, m in model.named_modules()
               if name and isinstance(m, ACTIVATIONS)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), contextlib.suppress(_StopForward):
            model(images[None] if images.ndim == 3 else images)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return found[0] if found else resolve_layer(model, "Conv2d:0")[0]


def layer_activations(model: nn.Module, images: torch.Tensor, layer: str = AUTO_LAYER) -> torch.Tensor:
    """The output of ``layer`` for a batch of preprocessed images.

    Args:
        model: The network.
        images: Float images ``[N, C, H, W]`` (or one image ``[C, H, W]``).
        layer: Layer spec; "auto" is the first post-activation spatial map (module docstring).

    Returns:
        The layer's output ``[N, K, h, w]`` (any shape the layer returns).
    """
    if images.ndim == 3:
        images = images[None]
    layer = resolve_feature_layer(model, images, layer)
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

    def normalised(self, scale: MapScale = "channel") -> torch.Tensor:
        """The maps scaled to [0, 1] for drawing, dead channels flat (:func:`normalise_maps`)."""
        return normalise_maps(self, scale)

    def _repr_png_(self) -> bytes:
        """The channel grid :func:`cnnlab.report.feature_map_figure` draws, for notebooks."""
        from .._show import png_of

        return png_of(self)


def _spatial(act: torch.Tensor, layer: str) -> torch.Tensor:
    if act.ndim != 4:
        raise ModelError(
            f"--layer {layer!r} outputs shape {tuple(act.shape)}, not feature maps [N, K, h, w]; "
            "choose a convolutional layer"
        )
    return act


def feature_maps(model: nn.Module, image: torch.Tensor, layer: str = AUTO_LAYER) -> FeatureMaps:
    """All channels of ``layer`` (default: the first post-activation map) for one preprocessed image.

    Args:
        model: The network.
        image: ``[C, H, W]`` (or ``[1, C, H, W]``).
        layer: Layer spec; "auto" is the first post-activation spatial map (module docstring).

    Returns:
        The maps, with the resolved layer name and per-channel dead/zero flags.
    """
    if image.ndim == 4 and image.shape[0] != 1:
        raise CnnlabError(f"image: expected one image, got a batch of {image.shape[0]}; pass image[i]")
    name = resolve_feature_layer(model, image, layer)
    act = _spatial(layer_activations(model, image, name), name)[0]
    flat = act.flatten(1)
    return FeatureMaps(name, act, flat.amax(1) <= 0, flat.abs().amax(1) == 0)


def channel_across_images(model: nn.Module, images: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    """One channel of ``layer`` ("auto": the first post-activation map) for several images: ``[N, h, w]``."""
    name = resolve_feature_layer(model, images, layer)
    act = _spatial(layer_activations(model, images, name), name)
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


def dead_filters(model: nn.Module, images: torch.Tensor, layer: str = AUTO_LAYER) -> DeadFilters:
    """Flag the channels of ``layer`` ("auto": the first post-activation map) never active on ``images``."""
    name = resolve_feature_layer(model, images, layer)
    act = _spatial(layer_activations(model, images, name), name)
    per_channel = act.transpose(0, 1).flatten(1)  # [K, N*h*w]
    return DeadFilters(
        name,
        per_channel.amax(1) <= 0,
        per_channel.abs().amax(1) == 0,
        (per_channel > 0).float().mean(1),
    )


def normalise_maps(fm: FeatureMaps, scale: MapScale = "channel") -> torch.Tensor:
    """The maps of ``fm`` scaled to [0, 1] for drawing, with dead channels flat.

    Args:
        fm: From :func:`feature_maps`.
        scale: "channel": each live channel from its own minimum (0) to its maximum (1), so weak channels
            are visible; "layer": one affine map for the whole layer, layer minimum -> 0, maximum -> 1, so
            channels compare (a weak channel looks weak).

    Returns:
        Float ``[K, h, w]`` in [0, 1]. A channel flagged dead (<= 0 everywhere) is drawn as what passes a
        ReLU, 0: flat at 0 ("channel") or at the level of 0 in the layer's scale ("layer"); it is never
        stretched to full contrast. A constant live channel is 0 in "channel" mode.

    Raises:
        CnnlabError: for an unknown ``scale``.
    """
    maps = fm.maps.detach().float()
    if scale == "channel":
        low = maps.amin(dim=(1, 2), keepdim=True)
        span = maps.amax(dim=(1, 2), keepdim=True) - low
    elif scale == "layer":
        low, span = maps.min(), maps.max() - maps.min()
    else:
        raise CnnlabError(f"scale={scale!r}: use 'channel' (each channel its own range) or 'layer'")
    out = torch.where(span > 0, (maps - low) / torch.where(span > 0, span, 1.0), 0.0)
    zero_level = ((0 - low) / span).clamp(0, 1) if scale == "layer" and span > 0 else torch.tensor(0.0)
    return torch.where(fm.dead[:, None, None], zero_level, out).clamp(0, 1)
