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
* :class:`DecodeSlots` bounds the uploads decoded at once (:func:`decode_slots`: as many as the memory
  budget holds at the largest image allowed, at most one per core); a request beyond them waits up to
  ``WAIT_S`` for a slot, then gets 503 with ``Retry-After`` instead of decoding (four parallel 88-Mpx
  uploads took the server from 869 to 2,008 MB).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from fastapi import HTTPException

from ..errors import DataError
from ..images import MAX_PIXELS_ENV, PixelBudget, decode_image, max_image_pixels, pil_to_tensor, skip_reason
from .geometry import Geometry, display_size, geometry_of

if TYPE_CHECKING:
    import torch

    from ..data.transforms import Preprocess

__all__ = ["ACCEPTED", "BodyLimit", "DecodeSlots", "Photo", "decode_slots", "read_photo"]

#: Pillow format -> media type of the images the server takes.
ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp",
            "GIF": "image/gif", "TIFF": "image/tiff"}
#: Room for the multipart boundaries and the small form fields beside the file.
FORM_OVERHEAD = 64 * 1024
_EXIF_ORIENTATION = 0x0112
#: Peak bytes per pixel of one upload's decode (the photo, its converted copy, the display and model
#: images): a bound on the 3.3 measured for 88-Mpx PNGs (their RSS grew by 1,139 MB for four).
DECODE_BYTES_PER_PIXEL = 8
#: Seconds a client told 503 (busy) waits before it asks again.
RETRY_AFTER_S = 1
#: How long a request waits for a decode slot before its 503: a page's few requests for one photo queue.
WAIT_S = 2.0


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


def decode_slots(max_pixels: int | None) -> int:
    """How many uploads may be decoded at once: the memory budget over one decode of the largest image
    allowed (:data:`DECODE_BYTES_PER_PIXEL` each), at least one and at most one per core.

    Args:
        max_pixels: The largest image allowed (:func:`cnnlab.images.max_image_pixels`); None: Pillow's
            default bound is assumed.
    """
    from PIL import Image

    from ..memory import memory_budget

    budget, _ = memory_budget()
    pixels = max_pixels or Image.MAX_IMAGE_PIXELS or 89_478_485
    return max(1, min(os.cpu_count() or 1, budget // (DECODE_BYTES_PER_PIXEL * pixels)))


class DecodeSlots:
    """At most ``slots`` uploads decoded at once; a request beyond them waits up to ``wait`` seconds for a
    slot (a page sends a few requests for one photo together), then is answered 503 with ``Retry-After``.

    Args:
        slots: Concurrent decodes (:func:`decode_slots`).
        wait: Seconds a request may wait for a slot.
    """

    def __init__(self, slots: int, wait: float = WAIT_S) -> None:
        self.slots = slots
        self.wait = wait
        self._free = threading.BoundedSemaphore(slots)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """A decode slot for the length of the block, or ``HTTPException`` 503 with ``Retry-After``."""
        if not self._free.acquire(timeout=self.wait):
            raise HTTPException(503, f"busy: {self.slots} photo(s) are being decoded, as many as the memory "
                                     f"budget allows; send it again in {RETRY_AFTER_S} s",
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        try:
            yield
        finally:
            self._free.release()


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


def read_photo(file: BinaryIO, preprocess: Preprocess, *, budget: PixelBudget, display_max: int,
               slots: DecodeSlots | None = None) -> Photo:
    """Check and decode an uploaded photo (module docstring); errors are ``HTTPException`` s.

    Args:
        file: The upload, seekable.
        preprocess: The model's preprocessing.
        budget: Pixels that may be decoded at once, shared by every request.
        display_max: Longest side of :attr:`Photo.display`.
        slots: Decodes that may run at once, shared by every request (None: no bound).

    Returns:
        The :class:`Photo`.
    """
    fmt, (w, h), orientation = _header(file)
    original = (w, h) if orientation >= 5 else (h, w)  # orientations 5-8 swap width and height
    shown = display_size(original, display_max)
    try:
        with slots.hold() if slots is not None else contextlib.nullcontext(), budget.reserve(w * h):
            display = decode_image(file, mode="RGB", size=None if shown == original else shown)
            raw = preprocess.load([file])
    except DataError as exc:
        detail = f"cannot decode the image: {skip_reason(exc)}; send an undamaged file"
        raise HTTPException(400, detail) from None
    if shown == original:  # decoded at full size: its own orientation is the truth
        original = (display.height, display.width)
    geometry = geometry_of(preprocess, original)
    return Photo(pil_to_tensor(display), raw, preprocess.normalize(raw), geometry, fmt)
