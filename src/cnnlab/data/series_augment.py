"""Augmentation of series batches ``[B, C, L]``: jitter, scaling and window slicing, per sample, seeded.

The ``series`` preset of :data:`cnnlab.data.transforms.AUGMENT_PRESETS` (its ``noise``, ``scaling`` and
``window`` ranges) applied to a float batch on whatever device it is on; training batches only (the data
module applies it in ``on_after_batch_transfer`` while training, never to validation).

* jitter: ``x + N(0, noise²)`` at every sample (Um et al. 2017);
* scaling: ``x * s`` with one ``s ~ N(1, scaling²)`` per series (Um et al. 2017);
* window slicing: a random window of ``window`` x L samples, stretched back to L by linear
  interpolation (Le Guennec et al. 2016).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataArgumentError, DataError
from .transforms import AugmentPreset, get_preset


class SeriesAugment(nn.Module):
    """Augment a float batch of series ``[B, C, L]`` with fresh random parameters for every series.

    Deterministic: the module owns a ``torch.Generator`` seeded with ``seed`` (the same seed and the same
    calls give the same batches), as :class:`~cnnlab.data.transforms.BatchAugment` does for images.

    Args:
        preset: ``"none"``, ``"series"`` or an :class:`~cnnlab.data.transforms.AugmentPreset` of series
            ranges.
        seed: Seed of the module's generator.

    Raises:
        DataArgumentError: An image preset (rotations and flips mean nothing along time).
    """

    def __init__(self, preset: str | AugmentPreset = "series", *, seed: int = 0) -> None:
        super().__init__()
        self.preset = get_preset(preset)
        if self.preset.for_images:
            raise DataArgumentError(
                f"{preset!r} augments images (rotation, zoom, flips); for series use series or none",
                param="augment",
            )
        if not 0.0 < self.preset.window <= 1.0:
            raise DataArgumentError(f"window {self.preset.window}: must be in (0, 1]", param="augment")
        self.generator = torch.Generator().manual_seed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the random stream (e.g. from seed, epoch and rank at the start of each epoch)."""
        self.generator.manual_seed(seed)

    def forward(self, series: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not series.is_floating_point() or series.ndim != 3:
            raise DataError(f"SeriesAugment expects float [B,C,L], got {series.dtype} {list(series.shape)}")
        p, g = self.preset, generator or self.generator
        if p.is_identity or series.shape[0] == 0:
            return series
        b, c, length = series.shape
        x = series.float()
        if p.window < 1.0 and length > 1:
            keep = max(2, round(p.window * length))
            start = torch.rand(b, generator=g, dtype=torch.float64) * (length - keep)
            steps = torch.linspace(0, keep - 1, length, dtype=torch.float64)
            pos = start[:, None] + steps[None, :]  # [B, L] source positions, in samples
            grid_x = (2 * pos / (length - 1) - 1).to(device=x.device, dtype=x.dtype)
            grid = torch.stack([grid_x, torch.zeros_like(grid_x)], dim=-1)[:, None]  # [B, 1, L, 2]
            x = F.grid_sample(x[:, :, None, :], grid, mode="bilinear", align_corners=True)[:, :, 0, :]
        if p.scaling:
            factor = 1.0 + p.scaling * torch.randn(b, 1, 1, generator=g)
            x = x * factor.to(device=x.device, dtype=x.dtype)
        if p.noise:
            x = x + p.noise * torch.randn(b, c, length, generator=g).to(device=x.device, dtype=x.dtype)
        return x

    def extra_repr(self) -> str:
        return repr(self.preset)
