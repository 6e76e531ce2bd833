"""Haar-like features (Viola-Jones rectangles) and the level-1 Haar wavelet.

Haar-like features follow scikit-image's ``feature.haar_like_feature`` types and signs:
``type-2-x`` = right half - left half, ``type-2-y`` = bottom - top, ``type-3-x`` / ``type-3-y`` = middle
third against the outer thirds, ``type-4`` = anti-diagonal - diagonal quadrants. The three-rectangle
kernels come in two forms (the ``form`` parameter):

* ``"zero-mean"`` (default), OpenCV's cascade features (``haar_x3``/``haar_y3`` in traincascade): the whole
  window with weight -1 plus the centre third with weight +3, i.e. -1 / +2 / -1. Every kernel sums to 0, so
  a flat region gives no response.
* ``"unbalanced"``, the Viola-Jones paper and ``skimage.feature.haar_like_feature``: centre sum minus the
  two outer sums (-1 / +1 / -1). The kernel sums to ``-size²/3`` (-12 at 6x6): flat regions respond.

The two- and four-rectangle kernels are the same in both forms and already sum to 0 (OpenCV's ``x2_y2``
is ``type-4`` with the opposite sign).

The Haar wavelet bank runs with stride 2 and equals ``pywt.dwt2(x, "haar")``, which returns
``cA, (cH, cV, cD)``; on each 2x2 block ``[[a, b], [c, d]]``:
``LL = cA = (a + b + c + d)/2``, ``LH = cH = (a + b - c - d)/2`` (low-pass along x, high-pass along y:
horizontal edges), ``HL = cV = (a - b + c - d)/2`` (vertical edges), ``HH = cD = (a - b - c + d)/2``.
For odd sizes use ``boundary="symmetric"`` (PyWavelets' default mode).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from ._bank import FilterBank, ParamValue, register_bank, stack
from ._limits import BankParamError, check_kernel_side

#: The three-rectangle weighting: OpenCV's zero-mean -1/+2/-1, or the paper's unbalanced -1/+1/-1.
HaarForm = Literal["zero-mean", "unbalanced"]
HAAR_FORMS: tuple[str, ...] = get_args(HaarForm)


@register_bank("haar")
def haar(size: int = 6, form: HaarForm = "zero-mean") -> FilterBank:
    """Two-, three- and four-rectangle Haar-like features over a ``size x size`` window.

    Args:
        size: Window side in pixels; a multiple of 6 so halves and thirds are whole pixels.
        form: Three-rectangle weights: "zero-mean" (OpenCV, -1/+2/-1, sums to 0) or "unbalanced"
            (Viola-Jones paper and scikit-image, -1/+1/-1, sums to -size²/3).
    """
    if not isinstance(size, int) or size < 6 or size % 6:
        raise BankParamError("size", size, "Haar-like windows need a multiple of 6 (6, 12, 18, ...)")
    check_kernel_side("size", size, size, "use a smaller size")
    if form not in HAAR_FORMS:
        raise BankParamError("form", form, f"choose {' or '.join(HAAR_FORMS)}")
    half, third = size // 2, size // 3
    two_x = np.ones((size, size))
    two_x[:, :half] = -1.0
    three_x = -np.ones((size, size))
    three_x[:, third: 2 * third] = 2.0 if form == "zero-mean" else 1.0
    four = np.ones((size, size))
    four[:half, :half] = -1.0
    four[half:, half:] = -1.0
    kinds = [("type-2-x", "two-rect x", two_x), ("type-2-y", "two-rect y", two_x.T),
             ("type-3-x", "three-rect x", three_x), ("type-3-y", "three-rect y", three_x.T),
             ("type-4", "four-rect", four)]
    params: list[dict[str, ParamValue]] = [{"type": t, "size": size, "form": form} for t, _, _ in kinds]
    tag = "" if form == "zero-mean" else f" {form}"
    names = [f"{label} {size}px{tag if '3' in t else ''}" for t, label, _ in kinds]
    return stack("haar", [k for _, _, k in kinds], names, params)


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
