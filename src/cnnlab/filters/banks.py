"""Filter banks: a registry of hand-designed kernel stacks and one batched call to run a bank over images.

Registered banks (see ``list_banks()``): gabor, sobel, scharr, prewitt, laplacian, log, dog, box, gaussian,
sharpen, emboss, haar, haar_wavelet. Each builder returns a :class:`FilterBank` whose ``weight`` is
``Tensor[out, in, k, k]`` with one name and one parameter dict per kernel. Add your own with
``@register_bank("name")`` (a duplicate name raises).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import CnnlabError
from ..memory import check_memory
from . import _classic, _gabor, _haar  # noqa: F401  (importing them registers the built-in banks)
from ._bank import DerivedResponse, FilterBank, build_bank, register_bank, registered_banks
from .convolve import Boundary, Padding, convolve2d, output_size, resolve_padding

__all__ = ["DerivedResponse", "FilterBank", "apply_bank", "list_banks", "make_bank", "register_bank",
           "response_shape"]


def list_banks() -> list[str]:
    """Names of the registered banks, in registration order (the CLI's ``--bank`` choices)."""
    return list(registered_banks())


def make_bank(name: str, *, dtype: torch.dtype = torch.float32, **params: Any) -> FilterBank:
    """Build a registered bank.

    Args:
        name: Registry name, e.g. "gabor".
        dtype: Weight dtype (kernels are computed in float64, then cast).
        **params: The bank's own parameters (e.g. ``frequencies=(0.1, 0.2), thetas=6`` for gabor).

    Returns:
        The bank.

    Raises:
        CnnlabError: unknown bank (with the closest names), unknown parameter, or a bad parameter value.
    """
    return build_bank(name, **params).to(dtype)


def _as_float_batch(images: Any) -> torch.Tensor:
    """numpy/torch ``[H,W]``, ``[C,H,W]`` or ``[N,C,H,W]`` -> float ``[N,C,H,W]``; uint8 scaled to [0, 1]."""
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim not in (2, 3, 4):
        raise CnnlabError(f"images of shape {tuple(x.shape)}: expected H x W, C x H x W or N x C x H x W")
    x = x.reshape((1,) * (4 - x.ndim) + tuple(x.shape))
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 255.0
    return x if x.is_floating_point() else x.to(torch.float32)


def response_shape(bank: FilterBank, height: int, width: int, *, padding: Padding = "same",
                   derived: bool = True) -> tuple[int, int, int]:
    """The ``(responses, H', W')`` that :func:`apply_bank` returns for one ``height x width`` image.

    Lets a caller check the memory a run will need before running it (see ``cnnlab.filters._limits``).
    """
    (top, bottom), (left, right) = resolve_padding(padding, bank.kernel_size, (1, 1))
    kh, kw = bank.kernel_size
    n = bank.out_channels + (len(bank.derived) if derived else 0)
    h = output_size(height, kh, pad=(top, bottom), stride=bank.stride)
    w = output_size(width, kw, pad=(left, right), stride=bank.stride)
    return n, max(h, 0), max(w, 0)


def apply_bank(images: Any, bank: FilterBank, *, padding: Padding = "same", boundary: Boundary = "zeros",
               derived: bool = True) -> torch.Tensor:
    """Run every filter of ``bank`` over every image in one batched convolution.

    Args:
        images: numpy array or Tensor ``[H,W]``, ``[C,H,W]`` (one image) or ``[N,C,H,W]``. uint8 images are
            scaled to [0, 1]; other dtypes are used as they are. When the bank has one input channel and the
            images have C > 1, the bank sees the channel mean (the "average" policy).
        bank: A bank from :func:`make_bank`.
        padding: As :func:`cnnlab.filters.convolve2d` ("same" keeps H x W at stride 1).
        boundary: How the padding is filled (zeros as in conv layers; "symmetric" = scipy.ndimage "reflect").
        derived: Append the bank's derived responses (e.g. Sobel magnitude) after the filter responses.

    Returns:
        Float Tensor ``[N, out (+ derived), H', W']`` in the order of ``bank.response_names``; the bank's
        stride applies (Haar wavelet: H' = ceil(H / 2) with "same").

    Raises:
        CnnlabError: when the responses would exceed the memory budget (``CNNLAB_MAX_MEMORY_GB``).
    """
    x = _as_float_batch(images)
    r, h, w_ = response_shape(bank, int(x.shape[2]), int(x.shape[3]), padding=padding, derived=derived)
    size = 8 if x.dtype == torch.float64 else 4
    what = f"{bank.name} responses ({x.shape[0]} image(s) x {r} x {h}x{w_})"
    check_memory(size * x.shape[0] * r * h * w_, what, "use fewer kernels or images")
    if x.shape[1] != bank.in_channels:
        if bank.in_channels != 1:
            raise CnnlabError(
                f"bank {bank.name!r} expects {bank.in_channels} channel(s), the images have {x.shape[1]}; "
                "convert the images or build the bank for that many channels"
            )
        x = x.mean(dim=1, keepdim=True)
    w = bank.weight.to(x.dtype) if x.dtype == torch.float64 else bank.weight.to(torch.float32)
    out = convolve2d(x.to(w.dtype), w, padding=padding, stride=bank.stride, boundary=boundary, method="fast")
    if derived and bank.derived:
        extra = [torch.sqrt(out[:, d.inputs[0]] ** 2 + out[:, d.inputs[1]] ** 2) for d in bank.derived]
        out = torch.cat([out, torch.stack(extra, dim=1)], dim=1)
    return out
