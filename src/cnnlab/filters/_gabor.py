"""The Gabor bank: frequency x orientation x scale x phase, exactly scikit-image's parameterisation.

Kernel (real part of ``skimage.filters.gabor_kernel``)::

    x' =  x cos θ + y sin θ,   y' = -x sin θ + y cos θ       (x = column offset, y = row offset)
    g(x, y) = exp(-(x'² / σx² + y'² / σy²) / 2) / (2π σx σy) · cos(2π f x' + φ)

on the grid ``x in [-x0, x0]``, ``y in [-y0, y0]`` with
``x0 = ceil(max(|n σx cos θ|, |n σy sin θ|, 1))`` and ``y0 = ceil(max(|n σy cos θ|, |n σx sin θ|, 1))``
(``n = n_stds``). When ``sigmas`` is not given, ``σx = σy = (1/π) sqrt(ln 2 / 2) (2^b + 1) / (2^b - 1) / f``
for bandwidth ``b`` (scikit-image's default).

OpenCV correspondence (checked in the tests): ``cv2.getGaborKernel(ksize=(2 x0 + 1, 2 y0 + 1), sigma=σx,
theta=θ, lambd=1/f, gamma=σx/σy, psi=-φ) / (2π σx σy)`` equals this kernel. OpenCV writes its kernel
rotated by 180° (index ``(ymax - y, xmax - x)``), which is why the phase changes sign; it also leaves out
the ``1/(2π σx σy)`` normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._bank import FilterBank, ParamValue, finite, positive, register_bank, stack
from ._limits import BankParamError, check_filter_count, check_kernel_side

#: A width or half size beyond any kernel allowed: larger values are held at it (then refused by size).
_HUGE = 1e12


def sigma_from_bandwidth(frequency: float, bandwidth: float = 1.0) -> float:
    """scikit-image's default Gaussian width for a Gabor of ``frequency`` and ``bandwidth`` (octaves).

    ``(2**b + 1) / (2**b - 1)`` is computed as ``1 + 2 / expm1(b ln 2)``: finite for any positive ``b``
    (``2**b`` overflows past b = 1024, and ``2**b - 1`` is 0 for b = 1e-300).
    """
    ratio = 1.0 + 2.0 / max(math.expm1(min(bandwidth, 1000.0) * math.log(2)), 1e-300)
    return min(1.0 / math.pi * math.sqrt(math.log(2) / 2.0) * ratio / frequency, _HUGE)


def half_size(theta: float, sigma_x: float, sigma_y: float, n_stds: float) -> tuple[int, int]:
    """``(x0, y0)``: the kernel spans ``[-x0, x0]`` columns and ``[-y0, y0]`` rows (scikit-image's rule).

    Widths beyond any allowed kernel are held at a huge finite size (the kernel-side check refuses it).
    """
    ct, st = math.cos(theta), math.sin(theta)
    sx, sy, n = (min(v, _HUGE) for v in (sigma_x, sigma_y, n_stds))
    x0 = math.ceil(min(max(abs(n * sx * ct), abs(n * sy * st), 1), _HUGE))
    y0 = math.ceil(min(max(abs(n * sy * ct), abs(n * sx * st), 1), _HUGE))
    return x0, y0


def gabor_kernel(frequency: float, theta: float = 0.0, *, sigma_x: float, sigma_y: float, phase: float = 0.0,
                 n_stds: float = 3.0) -> np.ndarray:
    """One real Gabor kernel (float64, odd size), the real part of ``skimage.filters.gabor_kernel``.

    Hand-written because scikit-image is a test-only dependency of cnnlab; the formula is in the module
    docstring.

    Args:
        frequency: Spatial frequency of the cosine carrier, cycles per pixel.
        theta: Orientation in radians (0: carrier along the columns, i.e. vertical stripes).
        sigma_x: Gaussian width along the carrier direction.
        sigma_y: Gaussian width across it.
        phase: Phase offset φ of the carrier in radians (0: even/symmetric, π/2: odd).
        n_stds: Half-size of the kernel in standard deviations.

    Returns:
        ``(2 y0 + 1) x (2 x0 + 1)`` array.
    """
    ct, st = math.cos(theta), math.sin(theta)
    x0, y0 = half_size(theta, sigma_x, sigma_y, n_stds)
    y, x = np.meshgrid(np.arange(-y0, y0 + 1), np.arange(-x0, x0 + 1), indexing="ij", sparse=True)
    rotx = x * ct + y * st
    roty = -x * st + y * ct
    envelope = np.exp(-0.5 * (rotx**2 / sigma_x**2 + roty**2 / sigma_y**2)) / (2 * np.pi * sigma_x * sigma_y)
    return envelope * np.cos(2 * np.pi * frequency * rotx + phase)


@register_bank("gabor")
def gabor(
    frequencies: Sequence[float] | float = (0.2, 0.3, 0.4),
    thetas: int | Sequence[float] = 4,
    sigmas: Sequence[float] | float | None = None,
    phases: Sequence[float] | float = (0.0,),
    bandwidth: float = 1.0,
    gamma: float = 1.0,
    n_stds: float = 3.0,
) -> FilterBank:
    """Gabor filters for every combination of frequency x theta x sigma x phase (in that nesting order).

    Args:
        frequencies: Carrier frequencies in cycles/pixel (0 < f <= 0.5 is meaningful).
        thetas: A number n of orientations (k·π/n, k = 0..n-1) or explicit angles in radians.
        sigmas: Gaussian widths σx (σy = σx / gamma); None derives σ from each frequency and ``bandwidth``.
        phases: Carrier phase offsets in radians (0: even, π/2: odd).
        bandwidth: Bandwidth in octaves, used only when ``sigmas`` is None.
        gamma: Spatial aspect ratio σx / σy (OpenCV's gamma); 1 = circular envelope.
        n_stds: Kernel half-size in standard deviations (scikit-image's ``n_stds``).

    Returns:
        A bank ``[F·T·S·P, 1, k, k]``; kernels of different natural sizes are zero-padded, centred, to the
        largest (the zeros do not change the response).
    """
    freqs = positive("frequencies", frequencies)
    counted = isinstance(thetas, int) and not isinstance(thetas, bool)
    if not counted and not isinstance(thetas, Sequence):
        raise BankParamError("thetas", thetas, "give a whole number of orientations or a list of angles")
    n_thetas = int(thetas) if counted else len(thetas)  # type: ignore[arg-type]
    if n_thetas < 1:
        raise BankParamError("thetas", thetas, "give a number of orientations >= 1 or a list of angles")
    sig: list[float | None] = [None] if sigmas is None else list(positive("sigmas", sigmas))
    phs = finite("phases", phases)
    for label, value in (("bandwidth", bandwidth), ("gamma", gamma), ("n_stds", n_stds)):
        positive(label, value)
    factors = {"frequencies": (frequencies, len(freqs)), "thetas": (thetas, n_thetas),
               "sigmas": (sigmas, len(sig)), "phases": (phases, len(phs))}
    largest = max(factors, key=lambda k: factors[k][1])
    check_filter_count(largest, factors[largest][0], math.prod(n for _, n in factors.values()),
                       " x ".join(f"{n} {k}" for k, (_, n) in factors.items()))
    sx = max(sigma_from_bandwidth(f, bandwidth) if s is None else s for f in freqs for s in sig)
    side = 2 * max(half_size(0.0, sx, sx / gamma, n_stds)) + 1  # the largest over all angles (at θ = 0)
    if sigmas is None:
        check_kernel_side("frequencies", frequencies, side, "use higher frequencies (σ ∝ 1/f), a wider "
                          "bandwidth or gamma nearer 1")
    else:
        check_kernel_side("sigmas", sigmas, side, "use smaller sigmas, a smaller n_stds or gamma nearer 1")
    angles = ([k * math.pi / n_thetas for k in range(n_thetas)] if counted
              else finite("thetas", thetas))  # type: ignore[arg-type]
    kernels, names, params = [], [], []
    for f in freqs:
        for theta in angles:
            for s in sig:
                sx = sigma_from_bandwidth(f, bandwidth) if s is None else s
                sy = sx / gamma
                for ph in phs:
                    k = gabor_kernel(f, theta, sigma_x=sx, sigma_y=sy, phase=ph, n_stds=n_stds)
                    kernels.append(k)
                    deg = math.degrees(theta)
                    names.append(f"f={f:g} θ={deg:.0f}° σ={sx:.2g} φ={math.degrees(ph):.0f}°")
                    p: dict[str, ParamValue] = {
                        "frequency": f, "theta": theta, "theta_deg": deg, "sigma_x": sx, "sigma_y": sy,
                        "phase": ph, "bandwidth": bandwidth, "n_stds": n_stds, "size": list(k.shape),
                    }
                    params.append(p)
    return stack("gabor", kernels, names, params)
