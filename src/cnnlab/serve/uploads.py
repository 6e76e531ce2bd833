"""Uploads, hardened: a capped body, images only, a pixel budget read from the header.

* :class:`BodyLimit` (ASGI middleware) refuses a request body over the cap with 413 before reading it
  when ``Content-Length`` says so, and otherwise counts the bytes as they stream in and stops at the
  cap (a chunked upload without a length cannot get past it either).
* :func:`read_photo` opens the upload's header only (Pillow reads no pixel data until ``load``):
  a format that is not an image -> 415 naming the accepted types; more pixels than
  ``CNNLAB_MAX_IMAGE_PIXELS`` (:func:`cnnlab.images.max_image_pixels`) -> 413, so a decompression
  bomb (a 20000 x 20000 PNG of a few KB) is never allocated. Then it decodes the photo twice from the
  same bytes: once for display (EXIF orientation applied, at most ``display_max`` pixels on the long
  side) and once with the model's own preprocessing (:meth:`Preprocess.load`), so the page sees exactly
  what ``cnnlab predict`` sees.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from fastapi import HTTPException

from ..errors import DataError
from ..images import MAX_PIXELS_ENV, PixelBudget, decode_image, max_image_pixels, pil_to_tensor, skip_reason
from .geometry import Geometry, display_size, geometry_of

if TYPE_CHECKING:
    import torch

    from ..data.transforms import Preprocess

__all__ = ["ACCEPTED", "BodyLimit", "Photo", "read_photo"]

#: Pillow format -> media type of the images the server takes.
ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp",
            "GIF": "image/gif", "TIFF": "image/tiff"}
#: Room for the multipart boundaries and the small form fields beside the file.
FORM_OVERHEAD = 64 * 1024
_EXIF_ORIENTATION = 0x0112


def accepted_text() -> str:
    """The accepted types, for messages: ``"JPEG (image/jpeg), PNG (image/png), ..."``."""
    return ", ".join(f"{k} ({v})" for k, v in ACCEPTED.items())


class BodyLimit:
    """ASGI middleware: request bodies over ``max_bytes`` get 413 (JSON), never read whole.

    Args:
        app: The ASGI app to wrap.
        max_bytes: The most body bytes one request may send.
        what: How the 413 message names the limit (e.g. "10 MB").
    """

    def __init__(self, app: Any, *, max_bytes: int, what: str) -> None:
        self.app, self.max_bytes, self.what = app, max_bytes, what

    def _detail(self) -> str:
        return f"upload too large: the limit is {self.what}; send a smaller image"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            body = json.dumps({"detail": self._detail()}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def capped_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI re-raises an HTTPException from body parsing; its handler answers JSON.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, capped_receive, send)


@dataclass
class Photo:
    """One uploaded photo, decoded.

    Attributes:
        display: uint8 [3, rows, cols]: the photo the right way up, at most ``display_max`` on the long side.
        raw: uint8 [1, C, H, W]: the model's preprocessing of it (what the model sees, to draw).
        x: float [1, C, H, W]: the model's input.
        geometry: Where the input sits on the original photo.
        format: Pillow's name of the format (JPEG, PNG, ...).
    """

    display: torch.Tensor
    raw: torch.Tensor
    x: torch.Tensor
    geometry: Geometry
    format: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the original photo, EXIF orientation applied."""
        return (self.geometry.original[1], self.geometry.original[0])


def _orientation(im: Any) -> int:
    """The EXIF orientation from what the header holds (a PNG's ``getexif`` would decode the pixels)."""
    from PIL import Image

    if im.format != "PNG":
        return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    exif = Image.Exif()
    if "exif" in im.info:
        exif.load(im.info["exif"])
    return int(exif.get(_EXIF_ORIENTATION, 1))


def _header(file: BinaryIO) -> tuple[str, tuple[int, int], int]:
    """(format, (width, height) as stored, EXIF orientation) from the header; HTTP errors for bad uploads."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the budget below decides
            with Image.open(file) as im:
                fmt, (w, h) = str(im.format), im.size
                limit = max_image_pixels()
                if limit is not None and w * h > limit:
                    raise HTTPException(413, f"image too large to decode ({w}x{h} = {w * h:,} pixels, over "
                                             f"{MAX_PIXELS_ENV} {limit:,}); send a smaller image")
                orientation = _orientation(im)
    except UnidentifiedImageError:
        detail = f"not an image (unrecognised format); send one of {accepted_text()}"
        raise HTTPException(415, detail) from None
    except Image.DecompressionBombError as exc:
        raise HTTPException(413, f"image too large to decode ({exc}); send a smaller image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise HTTPException(400, f"cannot read the image header ({exc}); send an undamaged file") from None
    if fmt not in ACCEPTED:
        raise HTTPException(415, f"{fmt} images are not accepted; send one of {accepted_text()}")
    return fmt, (w, h), orientation


def read_photo(file: BinaryIO, preprocess: Preprocess, *, budget: PixelBudget, display_max: int) -> Photo:
    """Check and decode an uploaded photo (module docstring); errors are ``HTTPException`` s.

    Args:
        file: The upload, seekable.
        preprocess: The model's preprocessing.
        budget: Pixels that may be decoded at once, shared by every request.
        display_max: Longest side of :attr:`Photo.display`.

    Returns:
        The :class:`Photo`.
    """
    fmt, (w, h), orientation = _header(file)
    original = (w, h) if orientation >= 5 else (h, w)  # orientations 5-8 swap width and height
    shown = display_size(original, display_max)
    try:
        with budget.reserve(w * h):
            display = decode_image(file, mode="RGB", size=None if shown == original else shown)
            raw = preprocess.load([file])
    except DataError as exc:
        detail = f"cannot decode the image: {skip_reason(exc)}; send an undamaged file"
        raise HTTPException(400, detail) from None
    if shown == original:  # decoded at full size: its own orientation is the truth
        original = (display.height, display.width)
    geometry = geometry_of(preprocess, original)
    return Photo(pil_to_tensor(display), raw, preprocess.normalize(raw), geometry, fmt)
