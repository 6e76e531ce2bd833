"""Pictures for the page, as ``data:`` URIs: heatmap layers on the original photo and feature-map tiles."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch

from ..images import overlay_heatmap
from ..interpret.feature_maps import FeatureMaps, normalise_maps

__all__ = ["heatmap_layers", "image_uri", "tiles"]

HEATMAP_CMAP = "jet"
TILE_CMAP = "viridis"


def image_uri(pixels: np.ndarray, *, fmt: str = "PNG") -> str:
    """uint8 ``[rows, cols]``, ``[rows, cols, 3]`` or ``[rows, cols, 4]`` -> a ``data:image/...;base64`` URI."""
    from PIL import Image

    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(pixels))
    if fmt == "PNG":
        img.save(buf, format="PNG", compress_level=1)  # fast: these are made per request
    else:
        img.save(buf, format="JPEG", quality=90)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _colour(values: np.ndarray, cmap: str) -> np.ndarray:
    from matplotlib import colormaps

    return (np.asarray(colormaps[cmap](values))[..., :3] * 255).round().astype(np.uint8)


def heatmap_layers(display: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> tuple[str, str]:
    """The heatmap as its own layer and blended over the photo, both in the original photo's frame.

    Args:
        display: uint8 [3, rows, cols] the photo.
        values: [rows, cols] in [0, 1], the map on the photo's frame (:meth:`Geometry.map_onto`).
        mask: [rows, cols] True where the model saw the photo.

    Returns:
        ``(heatmap, overlay)``: an RGBA PNG (colour-mapped values, transparent where the model saw
        nothing) and a JPEG of ``overlay_heatmap(photo, values, alpha=0.5)`` inside the mask.
    """
    v = values.clamp(0, 1).nan_to_num(0.0)
    rgba = np.empty((*v.shape, 4), dtype=np.uint8)
    rgba[..., :3] = _colour(v.numpy(), HEATMAP_CMAP)
    rgba[..., 3] = mask.numpy().astype(np.uint8) * 255
    blend = overlay_heatmap(display, v, alpha=0.5, cmap=HEATMAP_CMAP)
    blend = torch.where(mask[None], blend, display)
    return image_uri(rgba), image_uri(blend.permute(1, 2, 0).numpy(), fmt="JPEG")


def tiles(layer: str, maps: torch.Tensor) -> list[str]:
    """One colour-mapped PNG per channel of ``maps`` [K, h, w], each channel scaled to its own range.

    Dead channels (<= 0 everywhere) are drawn flat, never stretched (:func:`normalise_maps`).
    """
    flat = maps.flatten(1)
    fm = FeatureMaps(layer, maps, flat.amax(1) <= 0, flat.abs().amax(1) == 0)
    scaled = normalise_maps(fm, "channel").numpy()
    return [image_uri(_colour(m, TILE_CMAP)) for m in scaled]
