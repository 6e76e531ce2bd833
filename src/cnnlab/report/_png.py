"""A matplotlib figure as PNG bytes: the one conversion behind every ``_repr_png_`` of cnnlab's results."""

from __future__ import annotations

import io
from typing import Any


def figure_png(fig: Any, *, dpi: int = 100) -> bytes:
    """Render ``fig`` (a ``matplotlib.figure.Figure``) to PNG bytes, cropped to what is drawn.

    Args:
        fig: The figure (any figure of :mod:`cnnlab.report`; no pyplot needed).
        dpi: Resolution; 100 draws a 6-inch figure 600 pixels wide, a comfortable size in a notebook.

    Returns:
        The PNG file's bytes (they start with the PNG signature).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()
