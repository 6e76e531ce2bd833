"""Reading, converting and writing single images as uint8 tensors.

Every image cnnlab reads goes through :func:`decode_image`: EXIF orientation is applied and the odd
modes real folders contain (palette, RGBA, CMYK, 16-bit, 1-bit, LA, YCbCr, float) are converted to
plain 8-bit RGB or L. A file that cannot be decoded raises :class:`~cnnlab.errors.DataError` naming
the path and the reason, so dataset scans can skip it and list it.

Memory is bounded by a pixel budget (``CNNLAB_MAX_IMAGE_PIXELS``, default Pillow's
``Image.MAX_IMAGE_PIXELS``, about 89 million): an image with more pixels to decode is refused from its
header, before any pixel is decoded, and threads that decode together share one :class:`PixelBudget`.
Pillow itself still refuses images over twice its own limit when it opens them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

import numpy as np

from .errors import DataError

if TYPE_CHECKING:
    import torch
    from PIL import Image

ImageMode = Literal["RGB", "L"]

#: Modes that carry an alpha channel; they are composited on white (what a viewer shows).
_ALPHA_MODES = {"RGBA", "LA", "La", "RGBa", "PA"}


def _scale_to_uint8(img: Image.Image) -> Image.Image:
    """Scale a 16/32-bit integer or float single-channel image to 8 bits (PIL's own convert clips)."""
    from PIL import Image

    arr = np.asarray(img)
    if img.mode == "F":
        # Floats: [0, 1] data is scaled to [0, 255]; anything larger is taken as already in 8-bit units.
        arr = arr * 255.0 if np.nanmax(arr) <= 1.0 else arr
        out = np.clip(np.nan_to_num(arr), 0, 255).round()
    else:
        # 16-bit ("I;16*", and "I" which is what 16-bit PNGs open as): full range 0..65535 maps to 0..255.
        out = (np.clip(arr.astype(np.float64), 0, 65535) / 257.0).round()
    return Image.fromarray(out.astype(np.uint8), mode="L")


def to_mode(img: Image.Image, mode: ImageMode = "RGB") -> Image.Image:
    """Convert any PIL image to 8-bit ``mode`` ("RGB" or "L").

    Alpha is composited on white, palette images are expanded (with their transparency), CMYK and
    YCbCr go through PIL's converters, 16-bit and float images are scaled to 8 bits.

    Args:
        img: A loaded PIL image of any mode.
        mode: Target mode.

    Returns:
        A PIL image in ``mode``.
    """
    from PIL import Image

    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _scale_to_uint8(img)
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    return img if img.mode == mode else img.convert(mode)


#: Environment variable holding the most pixels one image may have when decoded (0 = no limit).
MAX_PIXELS_ENV = "CNNLAB_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int | None:
    """The pixel budget of one decode: ``$CNNLAB_MAX_IMAGE_PIXELS``, else Pillow's ``Image.MAX_IMAGE_PIXELS``.

    Returns:
        The most pixels an image may have, or None when unbounded (the variable is 0).

    Raises:
        CnnlabError: when the variable is not a whole number >= 0 (one line, not a per-file skip).
    """
    from PIL import Image

    from .values import env_number

    pillow = Image.MAX_IMAGE_PIXELS
    limit = int(env_number(MAX_PIXELS_ENV, default=pillow or 0, integer=True, unit="pixels", zero="no limit"))
    return None if limit == 0 else limit


class PixelBudget:
    """Pixels that may be decoded at the same time, shared by decoding threads.

    Each image holds its pixel count while it is decoded, converted and resized; others wait until the
    total fits. An image always fits when nothing else is decoding, so nothing waits forever.

    Args:
        total: The budget (the largest single image allowed, too); None for no limit.
    """

    def __init__(self, total: int | None) -> None:
        self.total = total
        self._used = 0
        self._free = threading.Condition()

    @property
    def used(self) -> int:
        """Pixels reserved right now."""
        with self._free:
            return self._used

    @contextlib.contextmanager
    def reserve(self, pixels: int) -> Iterator[None]:
        """Hold ``pixels`` of the budget for the body (waiting until they fit)."""
        if self.total is None:
            yield
            return
        total = self.total
        with self._free:
            self._free.wait_for(lambda: self._used == 0 or self._used + pixels <= total)
            self._used += pixels
        try:
            yield
        finally:
            with self._free:
                self._used -= pixels
                self._free.notify_all()


def _check_pixels(path: Path, size: tuple[int, int], limit: int | None) -> int:
    """The pixel count of an opened image of ``size`` (w, h); DataError when it is over ``limit``."""
    w, h = size
    if limit is not None and w * h > limit:
        raise DataError(
            f"{path}: image too large to decode ({w}x{h} = {w * h:,} pixels, over {MAX_PIXELS_ENV} "
            f"{limit:,}); shrink the file, or raise {MAX_PIXELS_ENV} if the memory is there"
        )
    return w * h


def _draft_jpeg(raw: Image.Image, size: tuple[int, int]) -> None:
    """Let a JPEG decode at a reduced scale that is still at least ``size`` (h, w)."""
    orientation = raw.getexif().get(0x0112, 1)
    h, w = size
    # draft() works in stored orientation; orientations 5-8 swap width and height.
    want = (h, w) if orientation >= 5 else (w, h)
    raw.draft(raw.mode if raw.mode in ("RGB", "L") else None, want)


def _reason(source: Path | BinaryIO, exc: BaseException) -> str:
    """A short human reason for a decode failure."""
    from PIL import Image, UnidentifiedImageError

    try:
        size = source.stat().st_size if isinstance(source, Path) else source.seek(0, os.SEEK_END)
        if size == 0:
            return "empty file (0 bytes)"
    except OSError as err:
        return f"cannot read file ({err.strerror or err})"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (unrecognised format)"
    if isinstance(exc, Image.DecompressionBombError):
        return f"image too large ({exc})"
    msg = str(exc) or type(exc).__name__
    if "truncated" in msg:
        return f"truncated file ({msg})"
    return f"cannot decode ({msg})"


def skip_reason(exc: DataError) -> str:
    """The reason in a :func:`decode_image` error ("<path>: <reason>; <fix>"), for skipped-file lists."""
    return str(exc).split(": ", 1)[-1].rsplit("; ", 1)[0]


def decode_image(
    path: str | os.PathLike[str] | BinaryIO,
    *,
    mode: ImageMode = "RGB",
    size: tuple[int, int] | None = None,
    budget: PixelBudget | None = None,
) -> Image.Image:
    """Open, fully decode, EXIF-transpose and convert one image file.

    Args:
        path: Image file, or a seekable binary file object holding one (an upload; read from its start,
            not closed; messages call it "image data", never a path of the file object).
        mode: "RGB" (3 channels) or "L" (1 channel).
        size: Optional (height, width) to resize to (bilinear with antialiasing, aspect not kept).
            JPEGs are decoded at a reduced scale first with PIL's ``draft`` when that is still at least
            ``size``, which makes large photos several times faster to load.
        budget: Pixel budget shared with other decoding threads (default: one of
            :func:`max_image_pixels` for this image alone).

    Returns:
        A loaded PIL image in ``mode`` (and ``size`` when given).

    Raises:
        DataError: naming the path and the reason when the file is missing, empty, not an image,
            truncated, otherwise undecodable, or has more pixels to decode than the budget.
    """
    from PIL import Image, ImageOps

    source: Path | BinaryIO = Path(path) if isinstance(path, (str, os.PathLike)) else path
    p = source if isinstance(source, Path) else Path("image data")
    if budget is None:
        budget = PixelBudget(max_image_pixels())
    try:
        with Image.open(source) as raw:
            if size is not None and raw.format == "JPEG":
                _draft_jpeg(raw, size)
            pixels = _check_pixels(p, raw.size, budget.total)  # from the header: nothing decoded yet
            with budget.reserve(pixels):
                raw.load()
                ImageOps.exif_transpose(raw, in_place=True)  # no copy of the full-size image
                img = to_mode(raw, mode)
                if size is not None and img.size != (size[1], size[0]):
                    img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                if img is raw:
                    img = raw.copy()  # closing ``raw`` releases its pixels
    except FileNotFoundError:
        raise DataError(f"{p}: file not found; check the path") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{p}: {_reason(source, exc)}; fix or remove the file") from None
    return img


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image (RGB or L) -> uint8 tensor [C, H, W] (a copy, contiguous)."""
    import torch

    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())  # a writable, contiguous copy


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """uint8 tensor [C, H, W] (C = 1 or 3) -> PIL image ("L" or "RGB")."""
    from PIL import Image

    _check_uint8_chw(image, "image")
    arr = image.detach().cpu().numpy()
    if arr.shape[0] == 1:
        return Image.fromarray(arr[0], mode="L")
    return Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0)), mode="RGB")


def to_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 tensor -> float32 in [0, 1] (same shape)."""
    import torch

    return image.to(torch.float32).div_(255.0)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """float tensor in [0, 1] -> uint8 (rounded, clamped; same shape)."""
    import torch

    return image.detach().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def read_image(path: str | os.PathLike[str], *, mode: ImageMode = "RGB") -> torch.Tensor:
    """Read an image file as a uint8 tensor [C, H, W], the right way up.

    Args:
        path: Image file (any format PIL reads).
        mode: "RGB" -> 3 channels, "L" -> 1 channel.

    Returns:
        uint8 tensor [3, H, W] or [1, H, W].

    Raises:
        DataError: naming the path and the reason when the file cannot be decoded.
    """
    return pil_to_tensor(decode_image(path, mode=mode))


def _check_uint8_chw(image: torch.Tensor, name: str) -> None:
    import torch

    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise DataError(
            f"{name}: expected a uint8 tensor [C,H,W] with C = 1 or 3, got {image.dtype} "
            f"{list(image.shape)}; convert with cnnlab.images.to_uint8"
        )


def overlay_heatmap(
    image: torch.Tensor, heatmap: torch.Tensor, *, alpha: float = 0.5, cmap: str = "jet",
    weighted: bool = False,
) -> torch.Tensor:
    """Blend a heatmap, coloured with a matplotlib colormap, over an image.

    Args:
        image: uint8 [3, H, W] (or [1, H, W], shown as grey).
        heatmap: float [h, w] in [0, 1]; resized bilinearly to (H, W) and clamped to [0, 1].
        alpha: Weight of the heatmap colour (0 = image only, 1 = heatmap only).
        cmap: Name of a matplotlib colormap.
        weighted: Scale ``alpha`` by the heatmap per pixel, so that where the map is 0 the image shows
            unchanged (a coarse 3x3 map no longer paints the whole background).

    Returns:
        uint8 [3, H, W]: ``(1 - a) * image + a * cmap(heatmap)``, ``a = alpha`` (or ``alpha * heatmap``).
    """
    import torch
    import torch.nn.functional as F
    from matplotlib import colormaps

    _check_uint8_chw(image, "image")
    if heatmap.ndim != 2:
        raise DataError(f"heatmap: expected a 2-D tensor [h,w], got shape {list(heatmap.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise DataError(f"alpha={alpha}: must be between 0 and 1")
    if cmap not in colormaps:
        raise DataError(f"cmap={cmap!r}: unknown matplotlib colormap; try 'jet', 'viridis' or 'inferno'")
    h, w = image.shape[1:]
    hm = heatmap.detach().to(torch.float32).cpu()[None, None]
    if hm.shape[-2:] != (h, w):
        hm = F.interpolate(hm, size=(h, w), mode="bilinear", align_corners=False)
    hm_np = hm[0, 0].clamp(0, 1).nan_to_num(0.0).numpy()
    rgba = np.asarray(colormaps[cmap](hm_np), dtype=np.float32)
    colour = torch.from_numpy(np.ascontiguousarray(rgba[..., :3])).permute(2, 0, 1)
    base = to_float(image.cpu()).expand(3, h, w)
    a = alpha * torch.from_numpy(np.ascontiguousarray(hm_np))[None] if weighted else torch.tensor(alpha)
    return to_uint8((1.0 - a) * base + a * colour)


def save_image(path: str | os.PathLike[str], image: torch.Tensor) -> Path:
    """Atomically write a uint8 [C, H, W] tensor as an image (format from the suffix, e.g. .png).

    Args:
        path: Destination file; its folder is created if needed.
        image: uint8 [1, H, W] or [3, H, W].

    Returns:
        ``path`` as a Path.
    """
    from ._io import atomic_path

    dest = Path(path)
    pil = tensor_to_pil(image)
    from PIL import Image

    fmt = Image.registered_extensions().get(dest.suffix.lower())
    if fmt is None:
        raise DataError(f"{dest}: unknown image suffix {dest.suffix!r}; use .png or .jpg")
    with atomic_path(dest) as tmp:
        pil.save(tmp, format=fmt)
    return dest
