"""Haar-like features (Viola-Jones rectangles) and the level-1 Haar wavelet.

Haar-like features follow scikit-image's ``feature.haar_like_feature`` signs (weights +-1, so a response is
a difference of rectangle sums): ``type-2-x`` = right half - left half, ``type-2-y`` = bottom - top,
``type-3-x`` / ``type-3-y`` = middle third - outer thirds, ``type-4`` = anti-diagonal - diagonal quadrants.

The Haar wavelet bank runs with stride 2 and equals ``pywt.dwt2(x, "haar")``, which returns
``cA, (cH, cV, cD)``; on each 2x2 block ``[[a, b], [c, d]]``:
``LL = cA = (a + b + c + d)/2``, ``LH = cH = (a + b - c - d)/2`` (low-pass along x, high-pass along y:
horizontal edges), ``HL = cV = (a - b + c - d)/2`` (vertical edges), ``HH = cD = (a - b - c + d)/2``.
For odd sizes use ``boundary="symmetric"`` (PyWavelets' default mode).
"""

from __future__ import annotations

import numpy as np

from ..errors import CnnlabError
from ._bank import FilterBank, ParamValue, register_bank, stack


@register_bank("haar")
def haar(size: int = 6) -> FilterBank:
    """Two-, three- and four-rectangle Haar-like features over a ``size x size`` window.

    Args:
        size: Window side in pixels; a multiple of 6 so halves and thirds are whole pixels.
    """
    if not isinstance(size, int) or size < 6 or size % 6:
        raise CnnlabError(f"size={size!r}: Haar-like windows need a multiple of 6 (6, 12, 18, ...)")
    half, third = size // 2, size // 3
    two_x = np.ones((size, size))
    two_x[:, :half] = -1.0
    three_x = -np.ones((size, size))
    three_x[:, third: 2 * third] = 1.0
    four = np.ones((size, size))
    four[:half, :half] = -1.0
    four[half:, half:] = -1.0
    kinds = [("type-2-x", "two-rect x", two_x), ("type-2-y", "two-rect y", two_x.T),
             ("type-3-x", "three-rect x", three_x), ("type-3-y", "three-rect y", three_x.T),
             ("type-4", "four-rect", four)]
    params: list[dict[str, ParamValue]] = [{"type": t, "size": size} for t, _, _ in kinds]
    return stack("haar", [k for _, _, k in kinds], [f"{label} {size}px" for _, label, _ in kinds], params)


@register_bank("haar_wavelet")
def haar_wavelet() -> FilterBank:
    """Level-1 2-D Haar wavelet analysis (LL, LH, HL, HH), stride 2; equals ``pywt.dwt2(x, "haar")``."""
    ll = np.array([[1.0, 1.0], [1.0, 1.0]]) / 2
    lh = np.array([[1.0, 1.0], [-1.0, -1.0]]) / 2
    hl = np.array([[1.0, -1.0], [1.0, -1.0]]) / 2
    hh = np.array([[1.0, -1.0], [-1.0, 1.0]]) / 2
    names = ["LL (cA)", "LH (cH)", "HL (cV)", "HH (cD)"]
    bands = zip(["LL", "LH", "HL", "HH"], ["cA", "cH", "cV", "cD"], strict=True)
    params: list[dict[str, ParamValue]] = [{"band": b, "pywt": p} for b, p in bands]
    return stack("haar_wavelet", [ll, lh, hl, hh], names, params, stride=2)
