"""The CAM family: class activation maps as small subclasses of one base (template method).

:meth:`CamMethod.explain` does the work every variant shares — eval mode, one forward pass with the
layer captured, target selection, one ``torch.autograd.grad`` of the target scores w.r.t. the captured
*activation* (never the parameters: the part of the network before the layer runs under ``no_grad``
and no parameter ``.grad`` is ever written), the weighted channel sum, ReLU, bilinear upsampling to
the input resolution and per-image min-max normalisation to [0, 1]. A variant supplies only
:meth:`CamMethod.cam_weights`: one weight per channel ``[N, K]``, or per activation ``[N, K, h, w]``.

Series (1-D convnets, ``[N, C, L]`` inputs): the layer's ``[N, K, l]`` output is handled as a map of
height 1, so every method is the same formula along time (Grad-CAM's weights are the mean gradient over
time, Wang et al.'s CAM the classifier's weights); the maps are ``[N, L]``, upsampled linearly to the
series' length. Score-CAM masks images and is refused on series.

Targets: by default the predicted class of each image. For binary models with one logit ``z``
(``cats_cnn``), class 1 is scored as ``z`` and class 0 as ``-z`` (the predicted class is ``z > 0``),
as pytorch-grad-cam's ``BinaryClassifierOutputTarget`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ArgumentError, CnnlabError, ModelError, did_you_mean
from ..models.surgery import gap_linear_head
from ._scorecam import score_weights
from .hooks import leaf_capture, resolve_layer
from .targets import CamInputs, Target, select_targets, target_scores

__all__ = [
    "CAM_METHODS",
    "CamInputs",
    "CamMethod",
    "CamResult",
    "TopChannels",
    "explain",
    "gradcam",
    "register_cam_method",
    "target_scores",
    "top_channels",
]

#: The registry of CAM methods by name; the CLI's ``--method`` choices come from it.
CAM_METHODS: dict[str, type[CamMethod]] = {}


def register_cam_method(cls: type[CamMethod]) -> type[CamMethod]:
    """Class decorator adding a :class:`CamMethod` subclass to :data:`CAM_METHODS` under ``cls.name``."""
    if cls.name in CAM_METHODS:
        raise ValueError(f"CAM method {cls.name!r} is already registered ({CAM_METHODS[cls.name].__name__})")
    CAM_METHODS[cls.name] = cls
    return cls


@dataclass
class CamResult:
    """One batch of class activation maps and what produced them.

    Attributes:
        maps: [N, H, W] in [0, 1] at input resolution ([N, L] for series).
        raw: [N, h, w] the weighted channel sum before ReLU, at the layer's resolution ([N, l]).
        weights: [N, K] channel weights, or [N, K, h, w] for element-wise methods (LayerCAM; [N, K, l]).
        activations: [N, K, h, w] the layer's output ([N, K, l] for series).
        targets: [N] the class explained per image.
        scores: [N] the target's score (logit; signed logit for one-logit binary models).
        logits: [N, classes] model outputs.
        layer: Dotted name of the layer used.
        method: Registry name of the method.
    """

    maps: torch.Tensor
    raw: torch.Tensor
    weights: torch.Tensor
    activations: torch.Tensor
    targets: torch.Tensor
    scores: torch.Tensor
    logits: torch.Tensor
    layer: str
    method: str

    def _repr_png_(self) -> bytes:
        """The maps as heatmaps titled with class and score (:func:`cnnlab.report.cam_maps_figure`)."""
        from .._show import png_of

        return png_of(self)


def _normalise(cam: torch.Tensor) -> torch.Tensor:
    """Per-image min-max to [0, 1] (a constant map becomes all zeros), as pytorch-grad-cam does."""
    flat = cam.flatten(1)
    lo = flat.min(1).values[:, None, None]
    cam = cam - lo
    hi = cam.flatten(1).max(1).values[:, None, None]
    return cam / (hi + 1e-7)


class CamMethod:
    """Base of every CAM variant; subclasses set ``name`` and implement :meth:`cam_weights`."""

    name: ClassVar[str]
    needs_gradients: ClassVar[bool] = True

    def cam_weights(self, inp: CamInputs) -> torch.Tensor:
        """Channel weights ``[N, K]`` or element-wise weights ``[N, K, h, w]``."""
        raise NotImplementedError

    def explain(
        self, model: nn.Module, images: torch.Tensor, *, target: Target = None, layer: str = "auto"
    ) -> CamResult:
        """Maps for one batch (see the module docstring for the steps)."""
        # Also callable where autograd is off entirely (Lightning's validation hooks run in inference mode).
        with torch.inference_mode(False):
            return self._explain(model, images.clone() if images.is_inference() else images, target, layer)

    def _explain(self, model: nn.Module, images: torch.Tensor, target: Target, layer: str) -> CamResult:
        if images.ndim not in (3, 4) or not images.is_floating_point():
            raise CnnlabError(
                f"images: expected a float tensor [N, C, H, W] (or series [N, C, L]), got "
                f"{tuple(images.shape)} {images.dtype}"
            )
        series = images.ndim == 3
        if series and self.name == "scorecam":
            raise ArgumentError("scorecam masks images; for series use gradcam, gradcam++, xgradcam, "
                                "layercam or cam", param="method")
        name, _ = resolve_layer(model, layer)
        was_training = model.training
        model.eval()
        try:
            # Channels-last convolutions are faster on CPU (oneDNN); the maps are the same.
            cpu = images.device.type == "cpu" and not series
            x = images.contiguous(memory_format=torch.channels_last) if cpu else images
            with torch.no_grad(), leaf_capture(model, layer) as cap:
                logits = model(x)  # the hook turns grad mode on after the layer
            if layer not in cap.activations:
                raise ModelError(
                    f"layer {name!r} never ran in the forward pass; choose a layer on the path to the logits"
                )
            act = cap.activations[layer]
            if act.ndim != (3 if series else 4):
                need = "[N, C, l] map along time" if series else "[N, C, h, w] feature map"
                raise ModelError(f"layer {name!r} outputs shape {tuple(act.shape)}; CAM needs a {need}")
            if logits.ndim != 2:
                raise ModelError(
                    f"{type(model).__name__} outputs {tuple(logits.shape)}; CAM needs logits [N, classes]"
                )
            targets = select_targets(logits.detach(), target)
            scores = target_scores(logits, targets)
            grads = None
            if self.needs_gradients:
                if not scores.requires_grad:
                    raise ModelError(f"the output of {type(model).__name__} does not depend on {name!r}")
                (grads,) = torch.autograd.grad(scores.sum(), act)  # one backward, w.r.t. the activation only
            act = act.detach()
            if series:  # a map of height 1: the same formulas along time
                act = act[:, :, None, :]
                grads = grads[:, :, None, :] if grads is not None else None
            inp = CamInputs(model, images, name, act, grads, targets, logits.detach())
            size = (1, images.shape[-1]) if series else images.shape[-2:]
            with torch.no_grad():
                weights = self.cam_weights(inp)
                w = weights if weights.ndim == 4 else weights[:, :, None, None]
                raw = (w * act).sum(1)
                up = F.interpolate(raw.clamp(min=0)[:, None], size=size, mode="bilinear", align_corners=False)
                maps = _normalise(up[:, 0])
            if series:  # back to [N, L], [N, l], [N, K, l]
                maps, raw, act = maps[:, 0], raw[:, 0], act[:, :, 0]
                weights = weights[:, :, 0] if weights.ndim == 4 else weights
        finally:
            model.train(was_training)
        return CamResult(maps, raw, weights, act, targets, scores.detach(), logits.detach(), name, self.name)


@register_cam_method
class GradCAM(CamMethod):
    """Grad-CAM (Selvaraju et al. 2017): weights = spatial mean of the gradients."""

    name = "gradcam"

    def cam_weights(self, inp: CamInputs) -> torch.Tensor:
        assert inp.gradients is not None
        return inp.gradients.mean((2, 3))


@register_cam_method
class GradCAMPlusPlus(CamMethod):
    """Grad-CAM++ (Chattopadhyay et al. 2018, eq. 19 with exp-score second/third derivatives)."""

    name = "gradcam++"

    def cam_weights(self, inp: CamInputs) -> torch.Tensor:
        g = inp.gradients
        assert g is not None
        g2 = g * g
        sum_a = inp.activations.sum((2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_a * g2 * g + 1e-6)
        alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
        return (alpha * g.clamp(min=0)).sum((2, 3))


@register_cam_method
class XGradCAM(CamMethod):
    """XGrad-CAM (Fu et al. 2020): gradients weighted by the normalised activations."""

    name = "xgradcam"

    def cam_weights(self, inp: CamInputs) -> torch.Tensor:
        assert inp.gradients is not None
        a = inp.activations
        return (inp.gradients * a / (a.sum((2, 3), keepdim=True) + 1e-7)).sum((2, 3))


@register_cam_method
class LayerCAM(CamMethod):
    """LayerCAM (Jiang et al. 2021): element-wise weights ReLU(gradient)."""

    name = "layercam"

    def cam_weights(self, inp: CamInputs) -> torch.Tensor:
        assert inp.gradients is not None
        return inp.gradients.clamp(min=0)


@register_cam_method
class CAM(CamMethod):
    """CAM (Zhou et al. 2016): the classifier's weights, for GAP + linear models only."""

    name = "cam"
    needs_gradients = False

    def cam_weights(self, inp: CamInputs) -> torch.Tensor:
        fc = gap_linear_head(inp.model, inp.activations, inp.logits, layer=inp.layer)
        if fc.out_features == 1:
            sign = torch.where(inp.targets == 1, 1.0, -1.0)[:, None]
            return fc.weight[0][None, :] * sign
        return fc.weight[inp.targets]


@register_cam_method
class ScoreCAM(CamMethod):
    """Score-CAM (Wang et al. 2020): softmax over channels of the target score of masked inputs.

    The input is multiplied by each channel's upsampled, min-max normalised activation, as in
    pytorch-grad-cam; one forward pass per distinct mask rather than per channel, ``batch_size``
    masked images at a time (see :mod:`cnnlab.interpret._scorecam`: the same map up to rounding).
    """

    name = "scorecam"
    needs_gradients = False
    batch_size: int = 8

    def cam_weights(self, inp: CamInputs) -> torch.Tensor:
        return score_weights(inp, batch_size=self.batch_size)


def series_input(model: nn.Module, x: torch.Tensor) -> bool:
    """Is ``x`` a batch of series ``[N, C, L]`` for a 1-D convnet (rather than one image ``[C, H, W]``)?"""
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))), None)
    return x.ndim == 3 and isinstance(first, nn.Conv1d)


def _method(method: str) -> CamMethod:
    try:
        return CAM_METHODS[method]()
    except KeyError:
        choices, hint = ", ".join(CAM_METHODS), did_you_mean(method, CAM_METHODS)
        message = f"{method!r}: unknown CAM method; {hint}use one of {choices}"
        raise ArgumentError(message, param="method") from None


def explain(
    model: nn.Module,
    images: torch.Tensor,
    *,
    target: Target = None,
    layer: str = "auto",
    method: str = "gradcam",
    batch_size: int = 32,
) -> CamResult:
    """Class activation maps with everything behind them (weights, activations, targets, scores).

    Args:
        model: Any classifier returning logits ``[N, classes]`` (one logit = binary).
        images: Preprocessed float images ``[N, C, H, W]``, or series ``[N, C, L]`` for a 1-D convnet.
        target: Class to explain: None (predicted class), one int for all images, or one per image.
        layer: Layer spec (``"auto"`` = ``model.default_cam_layer``; see :mod:`cnnlab.interpret.hooks`).
        method: A name in :data:`CAM_METHODS`.
        batch_size: Images per forward/backward pass.

    Returns:
        A :class:`CamResult` for all images.
    """
    impl = _method(method)
    if images.ndim == 3 and not series_input(model, images):
        images = images[None]
    t = None if target is None else torch.as_tensor(target, dtype=torch.long).reshape(-1)
    parts = []
    for start in range(0, len(images), batch_size):
        sl = slice(start, start + batch_size)
        part_t = None if t is None else (t if t.numel() == 1 else t[sl])
        parts.append(impl.explain(model, images[sl], target=part_t, layer=layer))
    if len(parts) == 1:
        return parts[0]
    cat = {
        f: torch.cat([getattr(p, f) for p in parts])
        for f in ("maps", "raw", "weights", "activations", "targets", "scores", "logits")
    }
    return CamResult(**cat, layer=parts[0].layer, method=parts[0].method)


def gradcam(
    model: nn.Module,
    images: torch.Tensor,
    *,
    target: Target = None,
    layer: str = "auto",
    method: str = "gradcam",
) -> torch.Tensor:
    """Class activation maps ``[N, H, W]`` in [0, 1] at input resolution (see :func:`explain`)."""
    return explain(model, images, target=target, layer=layer, method=method).maps


@dataclass
class TopChannels:
    """The k channels with the largest weights per image, each with its activation map.

    Attributes:
        indices: [N, k] channel indices, largest weight first.
        weights: [N, k] their weights (spatial mean for element-wise methods).
        activations: [N, k, h, w] their activations.
    """

    indices: torch.Tensor
    weights: torch.Tensor
    activations: torch.Tensor


def top_channels(result: CamResult, k: int = 8) -> TopChannels:
    """The top-k channels view of a :class:`CamResult`."""
    w = result.weights if result.weights.ndim == 2 else result.weights.mean((2, 3))
    k = min(k, w.shape[1])
    values, idx = w.topk(k, dim=1)
    acts = result.activations.gather(1, idx[:, :, None, None].expand(-1, -1, *result.activations.shape[-2:]))
    return TopChannels(idx, values, acts)
