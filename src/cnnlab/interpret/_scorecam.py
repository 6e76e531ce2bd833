"""Score-CAM's channel weights with one forward pass per distinct mask (internal to ``cam.ScoreCAM``).

Channel k's mask is its activation upsampled to the input (bilinear, corners aligned) and min-max
normalised, as pytorch-grad-cam computes it; its weight is the softmax over channels of the target
score of the input times the mask. Both cost one forward pass of the whole network per channel and
image; here the work is cut without changing the map beyond float rounding:

* channels whose min-max normalised activation maps are equal (a channel active at a single
  position, say: common after a ReLU) have the same mask, and are scored once;
* a constant channel (all zero after a ReLU) has the zero mask, so its score is that of a zero
  image: one forward pass serves every such channel of every image of the batch (min-max
  normalising a constant is undefined; pytorch-grad-cam's epsilon also gives the zero mask for an
  all-zero channel);
* the masks are computed batch-wise in one vectorised op, and the masked images of all images of
  the batch run together, ``batch_size`` at a time, under ``inference_mode`` and, on the CPU,
  channels-last (input and weights, see :mod:`cnnlab._layout`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._layout import channels_last, use_channels_last
from .targets import CamInputs, target_scores

__all__ = ["distinct_masks", "score_weights"]


def distinct_masks(activations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The channels whose masks must be scored, and which one scores each channel.

    Args:
        activations: [N, K, h, w] the CAM layer's output.

    Returns:
        ``pairs`` [M, 2]: (image, channel) of the first channel of each distinct non-constant
        normalised map, per image; ``slot`` [N, K]: the row of ``pairs`` that scores channel (i, k),
        or -1 for a constant channel (the zero mask).
    """
    n, k = activations.shape[:2]
    flat = activations.flatten(2)
    lo = flat.amin(2, keepdim=True)
    span = flat.amax(2, keepdim=True) - lo
    shapes = torch.where(span > 0, (flat - lo) / span, torch.zeros_like(flat))
    live = span[..., 0] > 0
    slot = torch.full((n, k), -1, dtype=torch.long)
    reps: list[torch.Tensor] = []
    offset = 0
    for i in range(n):
        channels = live[i].nonzero()[:, 0]
        if len(channels) == 0:
            continue
        _, inverse = torch.unique(shapes[i, channels], dim=0, return_inverse=True)
        first = torch.full((int(inverse.max()) + 1,), k, dtype=torch.long)
        first.scatter_reduce_(0, inverse, channels, reduce="amin")
        slot[i, channels] = inverse + offset
        offset += len(first)
        reps.append(torch.stack([torch.full_like(first, i), first], 1))
    return (torch.cat(reps) if reps else torch.empty(0, 2, dtype=torch.long)), slot


def _masked_scores(inp: CamInputs, pairs: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:
    """Target scores of the images ``pairs[:, 0]`` masked by their channels ``pairs[:, 1]``."""
    img, ch = pairs[:, 0], pairs[:, 1]
    up = F.interpolate(
        inp.activations[img, ch][:, None], size=inp.images.shape[-2:], mode="bilinear", align_corners=True
    )
    lo = up.amin((2, 3), keepdim=True)
    masks = (up - lo) / (up.amax((2, 3), keepdim=True) - lo + 1e-8)
    batch = (inp.images[img] * masks).contiguous(memory_format=fmt)
    return target_scores(inp.model(batch), inp.targets[img])


def score_weights(inp: CamInputs, *, batch_size: int) -> torch.Tensor:
    """Score-CAM weights [N, K] (see the module docstring)."""
    n = len(inp.images)
    pairs, slot = distinct_masks(inp.activations)
    cpu = use_channels_last(inp.images)
    fmt = torch.channels_last if cpu else torch.contiguous_format
    with torch.inference_mode(), channels_last(inp.model, cpu):
        zero = inp.model(torch.zeros_like(inp.images[:1]).contiguous(memory_format=fmt))
        zero_scores = target_scores(zero.expand(n, -1), inp.targets)
        starts = range(0, len(pairs), batch_size)
        parts = [_masked_scores(inp, pairs[s : s + batch_size], fmt) for s in starts]
        scored = torch.cat([*parts, zero_scores.new_empty(0)])
        scores = torch.where(slot >= 0, scored[slot.clamp(min=0)], zero_scores[:, None])
        weights = torch.softmax(scores, dim=1).to(inp.activations)
    return weights.clone()  # a normal tensor again (it was created in inference mode)
