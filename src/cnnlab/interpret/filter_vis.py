"""Filter visualisation by gradient ascent in input space (activation maximisation, Lucent-style).

Many filters of one layer are optimised together: image ``i`` of the batch maximises the mean
activation of filter ``filters[i]``. Each step runs the network only up to the layer and takes
``torch.autograd.grad`` w.r.t. the image parameters alone (no parameter ``.grad`` is written).

Robustness, as in Lucid/Lucent (Olah et al., "Feature Visualization", Distill 2017):

* ``param="fft"``: the image is the inverse real FFT of a learnable spectrum scaled by 1/frequency,
  so that the optimiser sees a whitened basis and high frequencies do not dominate; for RGB the three
  channels are decorrelated with Lucent's ImageNet colour-correlation matrix; ``sigmoid`` maps the
  result into [0, 1]. ``param="pixel"``: plain pixels through ``sigmoid``.
* ``transforms=True``: every step each image is padded with grey, randomly translated (jitter),
  scaled and rotated (one differentiable ``affine_grid``/``grid_sample`` per batch).

Works for any input shape (1x28x28 MNIST nets as well as 3x224x224 ImageNet nets).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlabError, ModelError
from .hooks import resolve_layer, run_until, truncated_capture

__all__ = ["FilterVisResult", "visualize_filters"]

Param = Literal["fft", "pixel"]

# Lucent's square root of the ImageNet colour correlation matrix (lucent/optvis/param/color.py).
_COLOR_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR = _COLOR_SVD_SQRT / _COLOR_SVD_SQRT.norm(dim=0).max()


@dataclass
class FilterVisResult:
    """Images that maximise filters of one layer, and how far the objective rose.

    Attributes:
        layer: Dotted name of the layer.
        filters: Filter (channel) index per image.
        images: [F, C, H, W] float in [0, 1] (before normalisation).
        history: [steps, F] mean activation of each filter at each step (on the transformed image).
        start: [F] mean activation on the random start image (no transforms).
        end: [F] mean activation on the final image (no transforms).
    """

    layer: str
    filters: list[int]
    images: torch.Tensor
    history: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor

    def _repr_png_(self) -> bytes:
        """The figure :func:`cnnlab.report.filter_vis_figure` draws, for notebooks."""
        from ..report._png import figure_png
        from ..report.interpret_plots import filter_vis_figure

        return figure_png(filter_vis_figure(self))


class _ImageParam(nn.Module):
    """A batch of images in [0, 1] from learnable parameters (FFT or pixel basis)."""

    def __init__(self, shape: tuple[int, int, int, int], param: Param, generator: torch.Generator) -> None:
        super().__init__()
        b, c, h, w = shape
        self.shape, self.param = shape, param
        if param == "fft":
            fy = torch.fft.fftfreq(h)[:, None]
            fx = torch.fft.rfftfreq(w)[None, :]
            freqs = (fx * fx + fy * fy).sqrt()
            self.register_buffer("scale", 1.0 / freqs.clamp(min=1.0 / max(h, w)))
            self.spectrum = nn.Parameter(torch.randn(b, c, h, w // 2 + 1, 2, generator=generator) * 0.01)
        else:
            self.pixels = nn.Parameter(torch.randn(b, c, h, w, generator=generator) * 0.01)

    def forward(self) -> torch.Tensor:
        _, c, h, w = self.shape
        if self.param == "fft":
            scale: torch.Tensor = self.scale  # type: ignore[assignment]
            spectrum = torch.view_as_complex(self.spectrum) * scale
            x = torch.fft.irfftn(spectrum, s=(h, w), norm="ortho") / 4.0  # Lucent's scale
        else:
            x = self.pixels
        if c == 3:
            x = torch.einsum("bchw,dc->bdhw", x, _COLOR.to(x))
        return torch.sigmoid(x)


def _random_affine(
    x: torch.Tensor, generator: torch.Generator, *, jitter: int, scale: float, rotation: float
) -> torch.Tensor:
    """Per-image random translation (pixels), scale (factor range) and rotation (degrees), grey outside."""
    b, _, h, w = x.shape
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(rotation)
    s = 1 + (torch.rand(b, generator=generator) * 2 - 1) * scale
    tx = (torch.randint(-jitter, jitter + 1, (b,), generator=generator) * 2 / w).float()
    ty = (torch.randint(-jitter, jitter + 1, (b,), generator=generator) * 2 / h).float()
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5


def _input_shape(model: nn.Module, image_size: Sequence[int] | None) -> tuple[int, int, int]:
    if image_size is not None:
        c, h, w = (int(v) for v in image_size)
        return c, h, w
    cfg = getattr(model, "pretrained_cfg", None)
    if cfg is not None:
        c, h, w = cfg.input_size
        return c, h, w
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise ModelError(f"{type(model).__name__} has no Conv2d; pass image_size=(C, H, W)")
    c = first.in_channels
    return (c, 28, 28) if c == 1 else (c, 224, 224)


def visualize_filters(
    model: nn.Module,
    layer: str,
    *,
    filters: Sequence[int] | None = None,
    image_size: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    steps: int = 128,
    lr: float = 0.05,
    param: Param = "fft",
    transforms: bool = True,
    jitter: int | None = None,
    scale: float = 0.1,
    rotation: float = 10.0,
    seed: int = 0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> FilterVisResult:
    """Optimise one input image per filter so that the filter's mean activation is as large as possible.

    Args:
        model: The network (left in its mode; runs in eval mode during the optimisation).
        layer: Layer spec (see :mod:`cnnlab.interpret.hooks`).
        filters: Channel indices to visualise (default: the first 16).
        image_size: (C, H, W) of the input; default from ``model.pretrained_cfg``, else the first conv.
        mean: Per-channel normalisation mean (default ``pretrained_cfg``'s, else 0).
        std: Per-channel normalisation std (default ``pretrained_cfg``'s, else 1).
        steps: Adam steps.
        lr: Adam learning rate.
        param: "fft" (decorrelated Fourier basis) or "pixel".
        transforms: Random jitter/scale/rotation every step.
        jitter: Max translation in pixels (default: 3.5% of the side, Lucent's 8 px at 224).
        scale: Max relative scale change.
        rotation: Max rotation in degrees.
        seed: Seed of the start images and of the transforms.
        callback: Called after each step with (step, mean activation per filter) — progress bars.

    Returns:
        A :class:`FilterVisResult`.
    """
    if steps < 1:
        raise CnnlabError(f"--steps {steps}: use at least 1")
    if torch.is_inference_mode_enabled():
        with torch.inference_mode(False):
            return visualize_filters(
                model, layer, filters=filters, image_size=image_size, mean=mean, std=std, steps=steps, lr=lr,
                param=param, transforms=transforms, jitter=jitter, scale=scale, rotation=rotation, seed=seed,
                callback=callback,
            )
    name, _ = resolve_layer(model, layer)
    c, h, w = _input_shape(model, image_size)
    cfg = getattr(model, "pretrained_cfg", None)
    mean_t = torch.tensor(mean if mean is not None else (cfg.mean if cfg else (0.0,) * c)).view(1, -1, 1, 1)
    std_t = torch.tensor(std if std is not None else (cfg.std if cfg else (1.0,) * c)).view(1, -1, 1, 1)
    gen = torch.Generator().manual_seed(seed)
    image = _ImageParam((1, c, h, w), param, gen)  # probe the layer's channel count on one image
    probe = _layer_output(model, layer, (image() - mean_t) / std_t)
    if probe.ndim < 2:
        raise ModelError(f"--layer {name!r} outputs shape {tuple(probe.shape)}; choose a layer with channels")
    k = probe.shape[1]
    filters = list(range(min(16, k))) if filters is None else [int(f) for f in filters]
    bad = [f for f in filters if not 0 <= f < k]
    if bad or not filters:
        raise CnnlabError(f"--filters {bad or filters}: layer {name!r} has {k} filters; use 0..{k - 1}")
    idx = torch.tensor(filters)
    jitter = max(1, round(0.035 * min(h, w))) if jitter is None else jitter

    def objective(x: torch.Tensor) -> torch.Tensor:
        act = _layer_output(model, layer, (x - mean_t) / std_t)
        act = act[torch.arange(len(filters)), idx]
        return act.flatten(1).mean(1)  # [F]

    image = _ImageParam((len(filters), c, h, w), param, gen)
    opt = torch.optim.Adam(image.parameters(), lr=lr)
    params = list(image.parameters())
    history = torch.empty(steps, len(filters))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            start = objective(image())
        for step in range(steps):
            with torch.enable_grad():
                x = image()
                if transforms:
                    x = _random_affine(x, gen, jitter=jitter, scale=scale, rotation=rotation)
                values = objective(x)
                grads = torch.autograd.grad(-values.sum(), params)  # image parameters only
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            opt.step()
            history[step] = values.detach()
            if callback is not None:
                callback(step, history[step])
        with torch.no_grad():
            final = image()
            end = objective(final)
    finally:
        model.train(was_training)
    return FilterVisResult(name, filters, final.detach(), history, start.detach(), end.detach())


def _layer_output(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on ``x`` only up to ``layer`` and return that layer's output (graph kept)."""
    with truncated_capture(model, layer) as cap:
        run_until(model, x)
    if layer not in cap.activations:
        raise ModelError(f"--layer {layer!r} never ran in the forward pass; choose a layer of the backbone")
    return cap.activations[layer]
