"""Edge, blur and enhancement banks: Sobel, Scharr, Prewitt, Laplacian, LoG, DoG, box, Gaussian, sharpen,
emboss.

All kernels are cross-correlation kernels (what a conv layer applies), with x = columns (left to right)
and y = rows (top to bottom). With zero padding the responses equal scipy.ndimage's with
``mode="constant"``: ``sobel x`` = ``ndimage.sobel(img, axis=1)``,
``sobel y`` = ``ndimage.sobel(img, axis=0)``
(likewise ``prewitt``), ``laplacian`` = ``ndimage.laplace``, ``gaussian`` = ``ndimage.gaussian_filter``,
``log`` = ``ndimage.gaussian_laplace``, ``box`` (odd sizes) = ``ndimage.uniform_filter``. Scharr uses
OpenCV's integer weights (3, 10, 3), as ``cv2.Scharr``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._bank import DerivedResponse, FilterBank, ParamValue, positive, register_bank, stack
from ._limits import BankParamError, check_filter_count, check_kernel_side


def _gradient_bank(name: str, smooth: Sequence[float]) -> FilterBank:
    """x and y derivative kernels: central difference [-1, 0, 1] times a smoothing profile across it."""
    kx = np.outer(np.asarray(smooth, dtype=np.float64), [-1.0, 0.0, 1.0])
    params: list[dict[str, ParamValue]] = [{"axis": "x"}, {"axis": "y"}]
    return stack(name, [kx, kx.T], [f"{name} x", f"{name} y"], params,
                 derived=(DerivedResponse(f"{name} magnitude", (0, 1)),))


@register_bank("sobel")
def sobel() -> FilterBank:
    """Sobel x and y (smoothing 1-2-1) and their magnitude ``sqrt(gx² + gy²)`` as a derived response."""
    return _gradient_bank("sobel", (1.0, 2.0, 1.0))


@register_bank("scharr")
def scharr() -> FilterBank:
    """Scharr x and y with OpenCV's weights (smoothing 3-10-3) and their magnitude."""
    return _gradient_bank("scharr", (3.0, 10.0, 3.0))


@register_bank("prewitt")
def prewitt() -> FilterBank:
    """Prewitt x and y (smoothing 1-1-1) and their magnitude."""
    return _gradient_bank("prewitt", (1.0, 1.0, 1.0))


@register_bank("laplacian")
def laplacian(neighbours: int = 4) -> FilterBank:
    """The discrete Laplacian, 4-neighbour (``ndimage.laplace``) or 8-neighbour."""
    if neighbours == 4:
        k = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    elif neighbours == 8:
        k = np.ones((3, 3))
        k[1, 1] = -8.0
    else:
        raise BankParamError("neighbours", neighbours, "the Laplacian bank takes 4 or 8")
    return stack("laplacian", [k], [f"laplacian {neighbours}-nb"], [{"neighbours": neighbours}])


def gaussian_1d(sigma: float, *, order: int = 0, truncate: float = 4.0) -> np.ndarray:
    """Sampled Gaussian (order 0) or its second derivative (order 2), exactly as scipy.ndimage builds them.

    Hand-written because scipy is a test-only dependency; radius ``int(truncate·σ + 0.5)``, the Gaussian
    normalised to sum 1, the second derivative ``(x²/σ⁴ - 1/σ²)`` times it.
    """
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * x**2 / sigma**2)
    phi /= phi.sum()
    if order == 0:
        return phi
    if order == 2:
        return (x**2 / sigma**4 - 1.0 / sigma**2) * phi
    raise ValueError(f"order {order} not supported")


def _sigma_list(sigmas: Sequence[float] | float, truncate: float, *, scale: float = 1.0,
                scale_name: str = "") -> list[float]:
    """Validated sigmas: positive, at most the kernel-count limit, kernels (of ``scale`` x σ) not too large.

    The side of a Gaussian kernel is ``2 int(truncate σ + 0.5) + 1`` (scipy.ndimage's radius).
    """
    sig = positive("sigmas", sigmas)
    (truncate,) = positive("truncate", truncate)
    check_filter_count("sigmas", sigmas, len(sig))
    check_kernel_side("sigmas", sigmas, 2 * int(truncate * max(sig) + 0.5) + 1,
                      "use smaller sigmas (or a smaller truncate)")
    if scale_name:
        check_kernel_side(scale_name, scale, 2 * int(truncate * scale * max(sig) + 0.5) + 1,
                          f"use a smaller {scale_name}")
    return sig


@register_bank("gaussian")
def gaussian(sigmas: Sequence[float] | float = (1.0, 2.0), truncate: float = 4.0) -> FilterBank:
    """Gaussian blurs, one per sigma (``ndimage.gaussian_filter``)."""
    sig = _sigma_list(sigmas, truncate)
    ks = [np.outer(gaussian_1d(s, truncate=truncate), gaussian_1d(s, truncate=truncate)) for s in sig]
    return stack("gaussian", ks, [f"gaussian σ={s:g}" for s in sig],
                 [{"sigma": s, "truncate": truncate} for s in sig])


@register_bank("log")
def log(sigmas: Sequence[float] | float = (1.0, 2.0), truncate: float = 4.0) -> FilterBank:
    """Laplacian of Gaussian, one per sigma (``ndimage.gaussian_laplace``): blob/edge detector."""
    sig = _sigma_list(sigmas, truncate)
    ks = []
    for s in sig:
        g, d2 = gaussian_1d(s, truncate=truncate), gaussian_1d(s, order=2, truncate=truncate)
        ks.append(np.outer(d2, g) + np.outer(g, d2))
    return stack("log", ks, [f"LoG σ={s:g}" for s in sig], [{"sigma": s, "truncate": truncate} for s in sig])


@register_bank("dog")
def dog(sigmas: Sequence[float] | float = (1.0, 2.0), ratio: float = 1.6,
        truncate: float = 4.0) -> FilterBank:
    """Difference of Gaussians ``G(σ) - G(ratio·σ)``, one per sigma (an approximation of -LoG)."""
    (ratio,) = positive("ratio", ratio)
    sig = _sigma_list(sigmas, truncate, scale=ratio, scale_name="ratio")
    ks = []
    for s in sig:
        narrow = np.outer(gaussian_1d(s, truncate=truncate), gaussian_1d(s, truncate=truncate))
        wide = np.outer(gaussian_1d(ratio * s, truncate=truncate), gaussian_1d(ratio * s, truncate=truncate))
        pad = (wide.shape[0] - narrow.shape[0]) // 2
        ks.append(np.pad(narrow, pad) - wide)
    return stack("dog", ks, [f"DoG σ={s:g}/{ratio * s:.3g}" for s in sig],
                 [{"sigma": s, "ratio": ratio, "truncate": truncate} for s in sig])


@register_bank("box")
def box(sizes: Sequence[int] | int = (3, 5)) -> FilterBank:
    """Box (mean) blurs, one per size."""
    sz = [sizes] if isinstance(sizes, int) else list(sizes)
    if not sz or any(not isinstance(s, int) or s < 1 for s in sz):
        raise BankParamError("sizes", sizes, "give one or more kernel sizes >= 1")
    check_filter_count("sizes", sizes, len(sz))
    check_kernel_side("sizes", sizes, max(sz), "use smaller sizes")
    return stack("box", [np.full((s, s), 1.0 / (s * s)) for s in sz], [f"box {s}x{s}" for s in sz],
                 [{"size": s} for s in sz])


@register_bank("sharpen")
def sharpen() -> FilterBank:
    """Sharpen: the image minus its 4-neighbour Laplacian."""
    k = np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])
    return stack("sharpen", [k], ["sharpen"], [{}])


@register_bank("emboss")
def emboss() -> FilterBank:
    """Emboss: a diagonal derivative plus the image, lit from the top left."""
    k = np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    return stack("emboss", [k], ["emboss"], [{}])
