"""The report as data: a :class:`Report` of runs, each a list of :class:`Section` of blocks.

Record -> aggregate -> render: the section builders (``sec_*.py``) compute these blocks from a run folder,
:mod:`cnnlab.report.html` renders them. Every block is plain data; figures are already PNG bytes (see
:func:`figure_picture` and :func:`image_picture`), so rendering needs neither torch nor matplotlib.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._png import figure_png

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure
    from matplotlib.text import Text as MplText

__all__ = [
    "Block",
    "Code",
    "Facts",
    "Gallery",
    "Missing",
    "Picture",
    "Report",
    "RunReport",
    "Section",
    "Table",
    "Text",
    "Tile",
    "figure_picture",
    "image_picture",
]

#: Figures are drawn at this resolution, lowered so that no side exceeds :data:`MAX_FIGURE_SIDE` pixels.
FIGURE_DPI = 100
MAX_FIGURE_SIDE = 2400
#: The widest a report figure is shown, in CSS px: a figure is rendered one PNG pixel per CSS pixel at
#: ``min(its width at FIGURE_DPI, FIGURE_WIDTH)`` (the page shows it at that width), not shrunk by the page.
FIGURE_WIDTH = 1000
#: The smallest text of a report figure, in CSS px at its displayed width.
MIN_TEXT_PX = 9.0
#: Image thumbnails (top losses, Grad-CAM tiles) are downscaled to at most this side.
THUMBNAIL_SIDE = 160
#: Thumbnails smaller than this are scaled up by the page without smoothing (pixels stay visible).
PIXELATED_BELOW = 64


@dataclass(frozen=True)
class Picture:
    """An image (PNG, or JPEG for photo-like ones, see ``mime``): a figure or a thumbnail.

    Attributes:
        png: The image file's bytes (PNG, or JPEG where ``mime`` says so).
        alt: Alternative text (what the picture shows).
        width: Pixel width of the PNG.
        height: Pixel height of the PNG.
        caption: A caption under the picture ("" for none).
        pixelated: A tiny image the page enlarges without smoothing (e.g. 28x28 digits).
        min_text_px: A figure's smallest text in CSS px at its displayed width (``None``: no text).
        mime: The image's media type (PNG for line art, JPEG/WebP for photo-like thumbnails).
    """

    png: bytes
    alt: str
    width: int
    height: int
    caption: str = ""
    pixelated: bool = False
    min_text_px: float | None = None
    mime: str = "image/png"


@dataclass(frozen=True)
class Tile:
    """One gallery entry: pictures side by side, lines of text under them, a tooltip; ``wrong`` marks a
    misclassified image."""

    pictures: tuple[Picture, ...]
    lines: tuple[str, ...] = ()
    title: str = ""
    wrong: bool = False


@dataclass(frozen=True)
class Gallery:
    """Thumbnails in a grid, with a caption that says how many there are and how they were chosen."""

    tiles: tuple[Tile, ...]
    caption: str = ""


@dataclass(frozen=True)
class Table:
    """A table of cells (numbers are right-aligned); ``scroll`` puts a long table in a scrolling box."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    caption: str = ""
    scroll: bool = False


@dataclass(frozen=True)
class Facts:
    """``name: value`` pairs (a definition list)."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Text:
    """A paragraph."""

    text: str


@dataclass(frozen=True)
class Code:
    """A command or other literal text, shown in a monospace box with its label."""

    text: str
    label: str = ""


@dataclass(frozen=True)
class Missing:
    """One line saying which input of a section is missing and why (the rest of the report goes on)."""

    reason: str


Block = Picture | Gallery | Table | Facts | Text | Code | Missing


@dataclass
class Section:
    """One section of a run's report: a key (for anchors), its title and its blocks."""

    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class RunReport:
    """The sections of one run folder; ``link``: the file of its full report (a comparison page links it)."""

    name: str
    path: str
    sections: list[Section] = field(default_factory=list)
    link: str = ""


@dataclass
class Report:
    """A whole report: one or more runs, and for several runs the comparison between them.

    Attributes:
        title: Page title.
        created: When the report was made (ISO 8601, local time).
        command: The command line that made it.
        versions: Package versions of the environment that made the report.
        runs: One :class:`RunReport` per run folder, in the order given.
        comparison: The comparison section (several runs only).
        shared: Sections every run has alike (a comparison page shows them once).
    """

    title: str
    created: str
    command: str
    versions: dict[str, str]
    runs: list[RunReport] = field(default_factory=list)
    comparison: Section | None = None
    shared: list[Section] = field(default_factory=list)

    def pictures(self) -> list[Picture]:
        """Every picture of the report (figures, thumbnails), in page order."""
        sections = ([self.comparison] if self.comparison else []) + self.shared
        sections += [s for r in self.runs for s in r.sections]
        out: list[Picture] = []
        for sec in sections:
            for block in sec.blocks:
                if isinstance(block, Picture):
                    out.append(block)
                elif isinstance(block, Gallery):
                    out.extend(p for t in block.tiles for p in t.pictures)
        return out


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def drawn_texts(fig: Figure) -> list[MplText]:
    """The texts of ``fig`` that are drawn: visible, not empty, on a visible axes (tick and axis labels only
    where the axes shows its axis)."""
    from matplotlib.text import Text as MplText

    out = []
    for t in fig.findobj(MplText):
        if not t.get_visible() or not t.get_text().strip():
            continue
        ax = t.axes
        if ax is not None:
            if not ax.get_visible():
                continue
            axis_texts = {id(x) for a in (ax.xaxis, ax.yaxis) for x in (
                *a.get_ticklabels(which="both"), a.label, a.get_offset_text())}
            if id(t) in axis_texts and not ax.axison:
                continue
        out.append(t)
    return out


def figure_picture(
    fig: Figure, alt: str, *, caption: str = "", dpi: int = FIGURE_DPI, photo: bool = False
) -> Picture:
    """Render a matplotlib figure to PNG (tight bounding box) for the width the page shows it at.

    The displayed width is ``min(width at dpi, FIGURE_WIDTH)`` CSS px, rendered one PNG pixel per CSS
    pixel: the dpi follows from it, and every text smaller than :data:`MIN_TEXT_PX` at that dpi is
    raised to it (a wide grid of tiles titled in 7 pt would otherwise be 5 px tall on the page).

    Args:
        fig: The figure (from the :mod:`cnnlab.report` plotting functions).
        alt: What the figure shows, for the ``alt`` attribute.
        caption: Caption under the figure.
        dpi: Resolution of a figure narrower than :data:`FIGURE_WIDTH` (lowered for wider ones).
        photo: A figure of photo-like tiles (sample images, filter visualisations): stored as JPEG,
            a fifth of the PNG's bytes; line art stays PNG.

    Returns:
        The :class:`Picture`, with ``min_text_px`` measured on the texts drawn.
    """
    w_in, h_in = (float(v) for v in fig.get_size_inches())
    dpi = max(30, min(dpi, int(FIGURE_WIDTH / max(w_in, 1e-3)), int(MAX_FIGURE_SIDE / max(h_in, 1e-3))))
    min_pt = MIN_TEXT_PX * 72 / dpi
    for ax in fig.axes:  # tick labels are re-made at each draw: raise them through tick_params
        for axis in (ax.xaxis, ax.yaxis):
            labels = axis.get_ticklabels(which="both")
            if labels and min(float(t.get_fontsize()) for t in labels) < min_pt:
                axis.set_tick_params(which="both", labelsize=min_pt)
    for t in drawn_texts(fig):
        if float(t.get_fontsize()) < min_pt:
            t.set_fontsize(min_pt)
    png = figure_png(fig, dpi=dpi)
    width, height = _png_size(png)
    sizes = [float(t.get_fontsize()) * dpi / 72 for t in drawn_texts(fig)]
    data, mime = (_jpeg(png), "image/jpeg") if photo else (png, "image/png")
    return Picture(data, alt, width, height, caption, min_text_px=min(sizes) if sizes else None, mime=mime)


#: JPEG quality of photo-like pictures: no visible artefacts on photos and tiles at the size shown.
JPEG_QUALITY = 85


def _jpeg(png: bytes) -> bytes:
    """PNG bytes re-encoded as JPEG (RGB, :data:`JPEG_QUALITY`)."""
    from PIL import Image

    buf = io.BytesIO()
    with Image.open(io.BytesIO(png)) as im:
        im.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def png_picture(png: bytes, alt: str, *, caption: str = "") -> Picture:
    """A PNG file's bytes (a figure a run wrote, such as ``lr_find.png``) as a :class:`Picture`.

    Raises:
        ValueError: The bytes are not a PNG.
    """
    width, height = _png_size(png)
    return Picture(png, alt, width, height, caption)


def image_picture(image: torch.Tensor, alt: str, *, max_side: int = THUMBNAIL_SIDE) -> Picture:
    """A uint8 ``[C, H, W]`` image as a PNG thumbnail (downscaled to ``max_side``, aspect ratio kept).

    Args:
        image: uint8 ``[1, H, W]`` or ``[3, H, W]``.
        alt: What the image shows.
        max_side: Largest side of the PNG; smaller images keep their size (the page enlarges them).

    Returns:
        The :class:`Picture` (``pixelated`` for images under :data:`PIXELATED_BELOW` pixels); a colour
        image at least that large is a JPEG (a photo), the others PNG (exact pixels).
    """
    from PIL import Image

    from ..images import tensor_to_pil

    pil = tensor_to_pil(image)
    if max(pil.size) > max_side:
        scale = max_side / max(pil.size)
        pil = pil.resize(
            (max(1, round(pil.width * scale)), max(1, round(pil.height * scale))), Image.Resampling.LANCZOS
        )
    buf = io.BytesIO()
    pixelated = max(pil.size) < PIXELATED_BELOW
    if pil.mode == "RGB" and not pixelated:
        pil.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        return Picture(buf.getvalue(), alt, pil.width, pil.height, mime="image/jpeg")
    pil.save(buf, format="PNG")
    return Picture(buf.getvalue(), alt, pil.width, pil.height, pixelated=pixelated)


def fmt_int(n: int | float) -> str:
    """``93322`` -> ``"93,322"``."""
    return f"{int(n):,}"


def fmt_seconds(seconds: float) -> str:
    """Seconds as ``"42.1 s"`` or ``"3 min 5 s"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def shown_of(shown: int, total: int, what: str) -> str:
    """``"all 10 classes"`` or ``"16 of 1,000 images"`` (never a silent subset)."""
    return f"all {total:,} {what}" if shown >= total else f"{shown:,} of {total:,} {what}"


def rows_of(items: Iterable[Sequence[Any]]) -> tuple[tuple[Any, ...], ...]:
    """Table rows as tuples."""
    return tuple(tuple(r) for r in items)
