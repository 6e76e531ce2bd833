"""Pictures for the page, as ``data:`` URIs: heatmap layers on the original photo and feature-map tiles.

Colour-mapped maps are palette PNGs: the value in [0, 1] picks one of 255 colours of the matplotlib
colormap (index 0 is transparent: where the model saw nothing). One byte a pixel, so encoding a heatmap
at the photo's own size costs a few milliseconds per request; 255 levels are more than 8-bit RGB shows
of a smooth map.
"""

from __future__ import annotations

import base64
import functools
import io
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..images import overlay_heatmap
from ..interpret.feature_maps import FeatureMaps, normalise_maps

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["heatmap_png", "image_uri", "overlay_jpeg", "tiles"]

HEATMAP_CMAP = "jet"
TILE_CMAP = "viridis"
_LEVELS = 255


def _uri(img: Image.Image, fmt: str, **options: object) -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_uri(pixels: np.ndarray, *, fmt: str = "PNG") -> str:
    """uint8 ``[rows, cols]`` or ``[rows, cols, 3]`` -> a ``data:image/png`` (or ``jpeg``) URI."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(pixels))
    return _uri(img, "PNG", compress_level=1) if fmt == "PNG" else _uri(img, "JPEG", quality=90)


@functools.cache
def _palette(cmap: str) -> list[int]:
    """Index 0 black (made transparent), 1..255 the colormap from 0 to 1, as PIL's flat palette."""
    from matplotlib import colormaps

    rgb = np.asarray(colormaps[cmap](np.linspace(0, 1, _LEVELS)))[:, :3]
    return [0, 0, 0, *(np.round(rgb * 255).astype(np.uint8).ravel().tolist())]


def _indexed(values: torch.Tensor, cmap: str, mask: torch.Tensor | None = None) -> str:
    from PIL import Image

    v = values.detach().float().cpu().clamp(0, 1).nan_to_num(0.0)
    idx = (1 + (v * (_LEVELS - 1)).round()).to(torch.uint8)
    if mask is not None:
        idx = torch.where(mask, idx, torch.zeros_like(idx))
    img = Image.fromarray(idx.numpy(), mode="P")
    img.putpalette(_palette(cmap))
    if mask is None:
        return _uri(img, "PNG", compress_level=1)
    return _uri(img, "PNG", compress_level=1, transparency=0)


def heatmap_png(values: torch.Tensor, mask: torch.Tensor) -> str:
    """The heatmap layer: ``values`` [rows, cols] in [0, 1] colour-mapped, transparent outside ``mask``.

    Args:
        values: The map on the photo's frame (:meth:`~cnnlab.serve.geometry.Geometry.map_onto`).
        mask: True where the model saw the photo.
    """
    return _indexed(values, HEATMAP_CMAP, mask)


def overlay_jpeg(display: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> str:
    """The photo with the heatmap blended in (``overlay_heatmap``, alpha 0.5) where ``mask`` is True."""
    blend = overlay_heatmap(display, values.clamp(0, 1).nan_to_num(0.0), alpha=0.5, cmap=HEATMAP_CMAP)
    return image_uri(torch.where(mask[None], blend, display).permute(1, 2, 0).numpy(), fmt="JPEG")


def tiles(layer: str, maps: torch.Tensor) -> list[str]:
    """One colour-mapped PNG per channel of ``maps`` [K, h, w], each channel scaled to its own range.

    Dead channels (<= 0 everywhere) are drawn flat, never stretched (:func:`normalise_maps`).
    """
    flat = maps.flatten(1)
    fm = FeatureMaps(layer, maps, flat.amax(1) <= 0, flat.abs().amax(1) == 0)
    return [_indexed(m, TILE_CMAP) for m in normalise_maps(fm, "channel")]
