"""Filter visualisation by gradient ascent in input space (activation maximisation, Lucent-style).

Image ``i`` maximises the mean activation of filter ``filters[i]`` of one layer. The images are
optimised together, ``batch_size`` at a time, one forward/backward pass per chunk and step:

* the forward pass stops at the layer (its hook raises once it has run: nothing after it is computed);
* ``torch.autograd.grad`` differentiates w.r.t. the image parameters alone (no parameter ``.grad``);
* the step is ``torch.optim.adam.adam``, the functional form of ``torch.optim.Adam`` (the same update;
  the class imports ``torch._dynamo`` on first use: 1.5 s of a new process here, more with a cold
  file cache).

All random numbers (start images, transforms) are drawn for the whole batch of filters and then split
into chunks, so the result does not depend on ``batch_size`` (up to float rounding).

Robustness, as in Lucid/Lucent (Olah et al., "Feature Visualization", Distill 2017):

* ``param="fft"``: the image is the inverse real FFT of a learnable spectrum scaled by 1/frequency,
  so that the optimiser sees a whitened basis and high frequencies do not dominate; for RGB the three
  channels are decorrelated with Lucent's ImageNet colour-correlation matrix; ``sigmoid`` maps the
  result into [0, 1]. ``param="pixel"``: plain pixels through ``sigmoid``.
* ``transforms=True``: every step each image is padded with grey, randomly translated (jitter),
  scaled and rotated (one differentiable ``affine_grid``/``grid_sample`` per chunk).

Works for any input shape (1x28x28 MNIST nets as well as 3x224x224 ImageNet nets).

Dead maps. A layer that ends in a ReLU-family activation (``ReLU``, ``ReLU6``, ``Hardtanh``; timm's
``BatchNormAct2d`` ends in one) is 0 for most channels at a near-grey start, and a channel that is 0
everywhere passes no gradient back to the pixels: ``efficientnet_lite0``'s ``features.bn2`` left 7 of
8 filters at 0.00. The ascent therefore maximises the input of that last activation (the
pre-activation, which always has a gradient); ``start``/``end`` still report the layer's own output,
so a filter that did not rise shows as such (``rose`` is False, the figure flags it).

``layer="auto"`` picks a middle stage (``model.blocks``' middle entry, else the middle convolution):
the last stage of an ImageNet net is too abstract and too dead to show anything in a few dozen steps.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.adam import adam

from ..errors import CnnlabError, ModelError
from ..values import check_seed
from .hooks import _first_tensor, _StopForward, resolve_layer, run_until

__all__ = ["FilterVisResult", "dream_layer", "visualize_filters"]

# Activations that are flat (zero gradient) over part of their input: a dead channel teaches nothing.
_FLAT_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Threshold)
# Modules that may follow the activation inside one layer without changing where it is flat.
_PASS_THROUGH = (nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                 nn.AdaptiveMaxPool2d)

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
        images: [F, C, H, W] float in [0, 1] (before normalisation), after the last step.
        history: [steps, F] mean of the objective (see ``objective``) of each filter at each step (on
            the transformed image).
        start: [F] mean activation on the random start image (no transforms).
        end: [F] mean activation on the final image (no transforms).
        start_images: [F, C, H, W] the random start images, in [0, 1].
        objective: What the ascent maximised: the layer's output, or the input of its last
            activation (``"<name> input (pre-activation)"``, see the module docstring).
    """

    layer: str
    filters: list[int]
    images: torch.Tensor
    history: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor
    start_images: torch.Tensor
    objective: str = ""

    @property
    def rose(self) -> list[bool]:
        """Per filter: did the layer's mean activation end above its start (and above 0)?"""
        return [bool(e > s and e > 0) for s, e in zip(self.start.tolist(), self.end.tolist(), strict=True)]

    def _repr_png_(self) -> bytes:
        """The figure :func:`cnnlab.report.filter_vis_figure` draws, for notebooks."""
        from .._show import png_of

        return png_of(self)


class _ImageParam:
    """Images in [0, 1] from a learnable tensor: an FFT spectrum or pixel logits."""

    def __init__(self, shape: tuple[int, int, int], param: Param) -> None:
        c, h, w = shape
        self.shape, self.param = shape, param
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        self.scale = 1.0 / (fx * fx + fy * fy).sqrt().clamp(min=1.0 / max(h, w))
        self.raw_shape = (c, h, w // 2 + 1, 2) if param == "fft" else (c, h, w)

    def init(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Start parameters of ``n`` images (small Gaussian noise): [n, *raw_shape]."""
        return torch.randn(n, *self.raw_shape, generator=generator) * 0.01

    def render(self, raw: torch.Tensor) -> torch.Tensor:
        """[B, *raw_shape] parameters -> [B, C, H, W] images in [0, 1]."""
        c, h, w = self.shape
        if self.param == "fft":
            spectrum = torch.view_as_complex(raw) * self.scale
            x = torch.fft.irfftn(spectrum, s=(h, w), norm="ortho") / 4.0  # Lucent's scale
        else:
            x = raw
        if c == 3:
            x = torch.einsum("bchw,dc->bdhw", x, _COLOR.to(x))
        return torch.sigmoid(x)


def _random_theta(
    n: int, size: tuple[int, int], generator: torch.Generator, *, jitter: int, scale: float, rotation: float
) -> torch.Tensor:
    """[n, 2, 3] affine matrices: per-image random translation (pixels), scale and rotation (degrees)."""
    h, w = size
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(rotation)
    s = 1 + (torch.rand(n, generator=generator) * 2 - 1) * scale
    tx = (torch.randint(-jitter, jitter + 1, (n,), generator=generator) * 2 / w).float()
    ty = (torch.randint(-jitter, jitter + 1, (n,), generator=generator) * 2 / h).float()
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    return torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample each image of ``x`` with its matrix of ``theta``; grey outside the image."""
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
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


def dream_layer(model: nn.Module, spec: str) -> str:
    """The layer ``cnnlab dream`` visualises: ``spec``, or for ``"auto"`` a middle stage of the model.

    Args:
        model: The network.
        spec: ``"auto"`` or any layer spec of :mod:`cnnlab.interpret.hooks`.

    Returns:
        The spec to use (``"auto"`` becomes the middle entry of ``model.blocks``, else the middle Conv2d).
    """
    if spec != "auto":
        return spec
    blocks = [b for b in getattr(model, "blocks", None) or [] if isinstance(b, str)]
    if blocks:
        return blocks[len(blocks) // 2]
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ModelError(f"{type(model).__name__} has no Conv2d; give --layer a dotted name")
    return convs[len(convs) // 2]


def _flat_activation(module: nn.Module) -> tuple[str, nn.Module] | None:
    """The ReLU-family activation that ends ``module`` (pools/dropout after it allowed), if any."""
    leaves = [(n, m) for n, m in module.named_modules() if not any(True for _ in m.children())]
    for name, m in reversed(leaves):
        if isinstance(m, _FLAT_ACTIVATIONS):
            return name, m
        if not isinstance(m, _PASS_THROUGH):
            return None
    return None


@contextlib.contextmanager
def _objective_capture(model: nn.Module, layer: str) -> Iterator[tuple[dict[str, torch.Tensor], str]]:
    """Capture the layer's output (then stop the forward pass) and, where it ends in a flat
    activation, that activation's input: ``(store with "out" [and "pre"], objective description)``."""
    name, module = resolve_layer(model, layer)
    store: dict[str, torch.Tensor] = {}
    handles = []
    found = _flat_activation(module)
    objective = name
    if found is not None:
        act_name = f"{name}.{found[0]}" if found[0] else name
        objective = f"{act_name} input (pre-activation)"
        # a clone: an in-place activation (ReLU(inplace=True), timm's ReLU6) would overwrite it
        handles.append(found[1].register_forward_pre_hook(
            lambda m, inp: store.__setitem__("pre", inp[0].clone())))

    def hook(mod: nn.Module, inputs: Any, output: Any) -> Any:
        store["out"] = _first_tensor(layer, output)
        raise _StopForward

    handles.append(module.register_forward_hook(hook))
    try:
        yield store, objective
    finally:
        for h in handles:
            h.remove()


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
    batch_size: int = 16,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> FilterVisResult:
    """Optimise one input image per filter so that the filter's mean activation is as large as possible.

    Args:
        model: The network (left in its mode; runs in eval mode during the optimisation).
        layer: Layer spec (see :mod:`cnnlab.interpret.hooks`); ``"auto"``: :func:`dream_layer`'s middle stage.
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
        batch_size: Images per forward/backward pass (the result does not depend on it).
        callback: Called after each step with (step, mean activation per filter) — progress bars.

    Returns:
        A :class:`FilterVisResult`.
    """
    if steps < 1:
        raise CnnlabError(f"--steps {steps}: use at least 1")
    if batch_size < 1:
        raise CnnlabError(f"batch_size {batch_size}: use at least 1")
    check_seed(seed)
    if torch.is_inference_mode_enabled():
        with torch.inference_mode(False):
            return visualize_filters(
                model, layer, filters=filters, image_size=image_size, mean=mean, std=std, steps=steps, lr=lr,
                param=param, transforms=transforms, jitter=jitter, scale=scale, rotation=rotation, seed=seed,
                batch_size=batch_size, callback=callback,
            )
    layer = dream_layer(model, layer)
    name, _ = resolve_layer(model, layer)
    c, h, w = _input_shape(model, image_size)
    cfg = getattr(model, "pretrained_cfg", None)
    mean_t = torch.tensor(mean if mean is not None else (cfg.mean if cfg else (0.0,) * c)).view(1, -1, 1, 1)
    std_t = torch.tensor(std if std is not None else (cfg.std if cfg else (1.0,) * c)).view(1, -1, 1, 1)
    image = _ImageParam((c, h, w), param)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        with _objective_capture(model, layer) as (store, objective):  # hooks for the whole optimisation

            def activations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                """(what the ascent maximises, the layer's output) for a batch of images."""
                store.clear()
                run_until(model, (x - mean_t) / std_t)
                if "out" not in store:
                    raise ModelError(
                        f"--layer {layer!r} never ran in the forward pass; choose a layer of the backbone"
                    )
                out = store.pop("out")
                return store.pop("pre", out), out

            with torch.no_grad():  # the layer's channel count, on one random image
                probe = activations(image.render(image.init(1, gen)))[1]
            if probe.ndim < 2:
                raise ModelError(
                    f"--layer {name!r} outputs shape {tuple(probe.shape)}; choose a layer with channels"
                )
            k = probe.shape[1]
            filters = list(range(min(16, k))) if filters is None else [int(f) for f in filters]
            bad = [f for f in filters if not 0 <= f < k]
            if bad or not filters:
                raise CnnlabError(
                    f"--filters {bad or filters}: layer {name!r} has {k} filters; use 0..{k - 1}"
                )
            jitter = max(1, round(0.035 * min(h, w))) if jitter is None else jitter

            def transform(n: int) -> torch.Tensor | None:
                if not transforms:
                    return None
                return _random_theta(n, (h, w), gen, jitter=jitter, scale=scale, rotation=rotation)

            result = _ascent(activations, filters, image, image.init(len(filters), gen), transform,
                             steps=steps, lr=lr, batch_size=batch_size, callback=callback)
    finally:
        model.train(was_training)
    return FilterVisResult(name, filters, *result, objective=objective)


def _ascent(
    activations: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    filters: list[int],
    image: _ImageParam,
    raw: torch.Tensor,
    transform: Callable[[int], torch.Tensor | None],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    callback: Callable[[int, torch.Tensor], None] | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adam on ``raw`` [F, ...] in chunks of ``batch_size``: (images, history, start, end, start_images)."""
    n = len(filters)
    chunks = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    picks = [(torch.arange(sl.stop - sl.start), torch.tensor(filters[sl])) for sl in chunks]

    def objective(x: torch.Tensor, j: int, which: int = 0) -> torch.Tensor:
        return activations(x)[which][picks[j]].flatten(1).mean(1)  # [chunk]: each image's own filter

    def evaluate(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and their filters' mean activation at the layer's output (what a user asks for)."""
        with torch.no_grad():
            imgs = image.render(r)
            return imgs, torch.cat([objective(imgs[sl], j, 1) for j, sl in enumerate(chunks)])

    start_images, start = evaluate(raw)
    exp_avg, exp_avg_sq, step_t = torch.zeros_like(raw), torch.zeros_like(raw), torch.tensor(0.0)
    history = torch.empty(steps, n)
    grad = torch.empty_like(raw)
    for step in range(steps):
        theta = transform(n)  # drawn for all filters at once: chunking does not change them
        for j, sl in enumerate(chunks):
            leaf = raw[sl].detach().requires_grad_(True)
            with torch.enable_grad():
                x = image.render(leaf)
                values = objective(x if theta is None else _affine(x, theta[sl]), j)
                (grad[sl],) = torch.autograd.grad(-values.sum(), leaf)  # the image parameters only
            history[step, sl] = values.detach()
        adam([raw], [grad], [exp_avg], [exp_avg_sq], [], [step_t], foreach=False, amsgrad=False,
             beta1=0.9, beta2=0.999, lr=lr, weight_decay=0.0, eps=1e-8, maximize=False)
        if callback is not None:
            callback(step, history[step])
    final, end = evaluate(raw)
    return final, history, start, end, start_images
