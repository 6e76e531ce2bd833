"""Between the original photo and the model's input: the preprocessing geometry and its inverse.

A :class:`~cnnlab.data.transforms.Preprocess` either resizes the photo to H x W (a run: aspect not kept)
or resizes its short side to ``size / crop_pct`` and centre-crops H x W (pretrained weights' eval
transform, torchvision v2's ``Resize`` + ``CenterCrop``). Both are, per axis, ``input = scale *
original - crop`` in edge coordinates (pixel ``i`` spans ``[i, i + 1)``), with the sizes and rounding
torchvision uses, so a map at input resolution and a box in input pixels go back onto the original
photo exactly: :meth:`Geometry.to_original` and :meth:`Geometry.map_onto`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ..data.transforms import Preprocess

__all__ = ["Geometry", "display_size", "geometry_of"]


@dataclass(frozen=True)
class Geometry:
    """How the model's input sits on the original photo.

    Attributes:
        original: (rows, cols) of the photo, EXIF orientation applied.
        resized: (rows, cols) it is resized to before the crop.
        crop: (top, left) of the crop in the resized photo ((0, 0) without a crop).
        input: (rows, cols) of the model's input.
    """

    original: tuple[int, int]
    resized: tuple[int, int]
    crop: tuple[int, int]
    input: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """Resized pixels per original pixel (rows, cols)."""
        return (self.resized[0] / self.original[0], self.resized[1] / self.original[1])

    def to_original(self, top: float, left: float, bottom: float, right: float) -> tuple[float, ...]:
        """Edges of a rectangle in input coordinates -> ``(x0, y0, x1, y1)`` on the original photo.

        Args:
            top, left, bottom, right: Edges in input pixels; input pixel ``r`` spans ``[r, r + 1)``, so
                the rows ``t..b`` inclusive are ``top=t, bottom=b + 1``.

        Returns:
            Left, top, right and bottom edges in original pixels (x first, as the page draws them).
        """
        (sy, sx), (cy, cx) = self.scale, self.crop
        return ((left + cx) / sx, (top + cy) / sy, (right + cx) / sx, (bottom + cy) / sy)

    def region(self) -> tuple[float, ...]:
        """The part of the original photo the model sees, ``(x0, y0, x1, y1)`` (all of it without a crop)."""
        return self.to_original(0, 0, self.input[0], self.input[1])

    def map_onto(self, values: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Resample a map at input resolution onto the original photo's frame, drawn at ``size``.

        Each output pixel centre is taken back through the geometry to input coordinates and the map is
        sampled there bilinearly (``grid_sample``, ``align_corners=False``: the same convention as the
        forward resize); pixels the model never saw (outside the crop) are masked.

        Args:
            values: [H, W] at the model's input resolution.
            size: (rows, cols) to draw the original frame at (its own size, or a smaller one of the same
                aspect ratio: :func:`display_size`).

        Returns:
            ``(map [rows, cols], mask [rows, cols] bool)``: True where the model's input covers the photo.
        """
        rows, cols = size
        (sy, sx), (cy, cx), (h, w) = self.scale, self.crop, self.input
        ys = (torch.arange(rows, dtype=torch.float64) + 0.5) * (self.original[0] / rows) * sy - cy
        xs = (torch.arange(cols, dtype=torch.float64) + 0.5) * (self.original[1] / cols) * sx - cx
        gy, gx = torch.meshgrid(2 * ys / h - 1, 2 * xs / w - 1, indexing="ij")
        grid = torch.stack([gx, gy], dim=-1)[None].to(torch.float32)
        out = F.grid_sample(values.detach().float().cpu()[None, None], grid, mode="bilinear",
                            padding_mode="border", align_corners=False)[0, 0]
        mask = (gy.abs() <= 1) & (gx.abs() <= 1)
        return out, mask


def _short_side_resize(original: tuple[int, int], size: int) -> tuple[int, int]:
    """torchvision ``Resize(int)``: the short side becomes ``size``, the long ``int(size * long / short)``."""
    h, w = original
    if w <= h:
        return (int(size * h / w), size)
    return (size, int(size * w / h))


def geometry_of(preprocess: Preprocess, original: tuple[int, int]) -> Geometry:
    """The geometry ``preprocess`` applies to a photo of ``original`` (rows, cols).

    Args:
        preprocess: The model's preprocessing (``ModelSource.preprocess``).
        original: (rows, cols) of the photo, EXIF orientation applied.

    Returns:
        The :class:`Geometry` (the same sizes and rounding as :meth:`Preprocess.load`).
    """
    _, h, w = preprocess.image_size
    cfg = preprocess.weights
    if cfg is None:
        return Geometry(original, (h, w), (0, 0), (h, w))
    crop = cfg.crop_pct if cfg.crop_pct else 1.0
    # The sizes of cnnlab.data.transforms._eval_geometry's Resize, then CenterCrop's rounding.
    resized = _short_side_resize(original, math.floor(h / crop)) if h == w else (int(h / crop), int(w / crop))
    top, left = round((resized[0] - h) / 2.0), round((resized[1] - w) / 2.0)
    return Geometry(original, resized, (top, left), (h, w))


def display_size(original: tuple[int, int], longest: int) -> tuple[int, int]:
    """(rows, cols) of the original frame with the long side at most ``longest``, aspect ratio kept."""
    h, w = original
    if max(h, w) <= longest:
        return original
    f = longest / max(h, w)
    return (max(1, round(h * f)), max(1, round(w * f)))
