"""2-D convolution as a CNN computes it: padding, stride, dilation, one readable path and one fast path.

Both paths give the same numbers:

* ``method="reference"`` is the textbook loop in numpy: for every output position take the (dilated)
  patch of the padded image under the kernel and sum the element-wise products.
* ``method="fast"`` is one :func:`torch.nn.functional.conv2d` call on the whole batch.

Like every deep-learning framework, the operation is a *cross-correlation* (the kernel is not flipped);
``flip=True`` rotates the kernel by 180° first, which gives the mathematical convolution
(``scipy.signal.convolve2d``).

Output size per axis, for input size ``n``, padding ``p`` on each side (``p_before + p_after`` in
general), kernel size ``k``, dilation ``d`` and stride ``s``::

    out = (n + 2p - d(k - 1) - 1) // s + 1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np

from ..errors import CnnlabError

if TYPE_CHECKING:
    import torch

Padding: TypeAlias = Literal["valid", "same"] | int | tuple[int, int]
Method: TypeAlias = Literal["fast", "reference"]
#: How the image is extended beyond its border. Names follow torch's ``padding_mode`` plus "symmetric".
#: Equivalents: zeros = scipy.ndimage "constant" (cval 0) = np.pad "constant"; reflect = ndimage "mirror" =
#: np.pad "reflect"; replicate = ndimage "nearest" = np.pad "edge"; circular = ndimage "wrap" = np.pad
#: "wrap"; symmetric = ndimage "reflect" = np.pad "symmetric" = PyWavelets "symmetric".
Boundary: TypeAlias = Literal["zeros", "reflect", "replicate", "circular", "symmetric"]

_NP_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap",
                "symmetric": "symmetric"}


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """An int or a pair of ints as ``(rows, cols)``; ``name`` is used in the error."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise CnnlabError(f"{name}={value!r}: expected an int or a pair of ints (rows, cols)")


def output_size(n: int, k: int, *, pad: int | tuple[int, int] = 0, stride: int = 1, dilation: int = 1) -> int:
    """Output length along one axis: ``(n + p_before + p_after - d(k - 1) - 1) // s + 1``.

    Args:
        n: Input length.
        k: Kernel length.
        pad: Padding on each side (an int), or ``(before, after)``.
        stride: Step between output positions.
        dilation: Spacing between kernel taps.

    Returns:
        The number of output positions (may be <= 0 when the kernel does not fit).
    """
    before, after = (pad, pad) if isinstance(pad, int) else pad
    return (n + before + after - dilation * (k - 1) - 1) // stride + 1


def resolve_padding(
    padding: Padding, kernel_hw: tuple[int, int], dilation: tuple[int, int], *, flip: bool = False
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Turn a padding option into ``((top, bottom), (left, right))``.

    ``"same"`` pads ``d(k - 1)`` in total per axis so that stride 1 keeps the size; when that total is odd
    (even kernels) the extra row/column goes after the image, so the kernel's anchor is its element
    ``(k - 1) // 2`` as given — for ``flip=True`` that is before the image. This is exactly where
    ``scipy.signal.correlate2d`` / ``convolve2d`` with ``mode="same"`` put it.

    Args:
        padding: "valid", "same", an int (all sides) or ``(rows, cols)``.
        kernel_hw: Kernel size ``(kh, kw)``.
        dilation: ``(dh, dw)``.
        flip: Whether the kernel is rotated by 180° before sliding (true convolution).

    Returns:
        ``((top, bottom), (left, right))`` in pixels.

    Raises:
        CnnlabError: for an unknown string or a negative amount.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            out = []
            for k, d in zip(kernel_hw, dilation, strict=True):
                total = d * (k - 1)
                before, after = total // 2, total - total // 2
                out.append((after, before) if flip else (before, after))
            return out[0], out[1]
        raise CnnlabError(f"padding={padding!r}: use 'valid', 'same', an int or a pair (rows, cols)")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise CnnlabError(f"padding={padding!r}: padding cannot be negative; use 0 ('valid') or more")
    return (ph, ph), (pw, pw)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _as_numpy(x: Any) -> np.ndarray:
    if _is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _result_dtype(image: np.ndarray, kernel: np.ndarray) -> np.dtype:
    """float64 when either operand is float64, else float32 (integer images are computed in floats)."""
    if np.float64 in (image.dtype, kernel.dtype):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _normalise(image_shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> tuple[tuple[int, ...], str]:
    """Check the shapes; return the 4-D image shape [N, C, H, W] and the layout ("depthwise" | "bank")."""
    if len(image_shape) not in (2, 3, 4):
        raise CnnlabError(
            f"image of shape {tuple(image_shape)}: expected H x W, C x H x W or a batch N x C x H x W"
        )
    if 0 in image_shape:
        raise CnnlabError(f"image of shape {tuple(image_shape)} is empty; give an image with pixels")
    if len(kernel_shape) not in (2, 4) or 0 in kernel_shape:
        raise CnnlabError(
            f"kernel of shape {tuple(kernel_shape)}: expected a 2-D kernel (kh x kw) or a 4-D bank "
            "(out x in x kh x kw); pass one 2-D kernel per call or stack them into a bank"
        )
    shape4 = (1, 1, *image_shape) if len(image_shape) == 2 else (
        (1, *image_shape) if len(image_shape) == 3 else tuple(image_shape))
    channels = shape4[1]
    if len(kernel_shape) == 2:
        return shape4, "depthwise"  # the 2-D kernel runs on every channel separately
    if kernel_shape[1] != channels:
        raise CnnlabError(
            f"kernel bank of shape {tuple(kernel_shape)} expects {kernel_shape[1]} input channel(s) but the "
            f"image has {channels}; give a bank with in={channels} or convert the image"
        )
    return shape4, "bank"


def convolve2d(
    image: Any,
    kernel: Any,
    *,
    padding: Padding = "valid",
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    flip: bool = False,
    boundary: Boundary = "zeros",
    method: Method = "fast",
) -> Any:
    """Slide ``kernel`` over ``image`` (cross-correlation, as in CNNs) with padding, stride and dilation.

    Output size per axis: ``(n + 2p - d(k - 1) - 1) // s + 1`` for input size ``n``, padding ``p`` per
    side (``p_before + p_after`` for "same" with even extents), kernel size ``k``, dilation ``d``,
    stride ``s``. ``"same"`` with stride 1 keeps the size; with stride ``s`` it gives ``ceil(n / s)``.

    Shapes:
        * image ``H x W``, kernel ``kh x kw`` -> ``H' x W'``.
        * image ``C x H x W``, kernel ``kh x kw`` (applied to every channel) -> ``C x H' x W'``;
          kernel bank ``out x C x kh x kw`` -> ``out x H' x W'`` (an ``H x W`` image counts as ``C = 1``).
        * batch ``N x C x H x W``: as above with a leading ``N``.

    Args:
        image: numpy array or torch tensor (any real dtype; integers are computed as float32).
        kernel: numpy array or torch tensor, 2-D or a 4-D bank.
        padding: "valid" (none), "same" (see :func:`resolve_padding`), an int, or ``(rows, cols)``.
        stride: Step between output positions, int or ``(rows, cols)``, >= 1.
        dilation: Spacing between kernel taps, int or ``(rows, cols)``, >= 1.
        flip: Rotate the kernel by 180° first (true convolution, as ``scipy.signal.convolve2d``).
        boundary: How the padding is filled (see :data:`Boundary`); "zeros" is what CNN layers do.
        method: "fast" (one ``torch.nn.functional.conv2d`` call) or "reference" (the numpy loop).

    Returns:
        The response, of the same kind as ``image`` (numpy in, numpy out; torch in, torch out on the
        image's device), float64 if either input is float64, else float32.

    Raises:
        CnnlabError: kernel larger than the padded image, a kernel that is neither 2-D nor a matching
            4-D bank, stride < 1, dilation < 1, negative or unknown padding, unknown method/boundary.
    """
    if method not in ("fast", "reference"):
        raise CnnlabError(f"method={method!r}: use 'fast' or 'reference'")
    if boundary not in _NP_PAD_MODE:
        raise CnnlabError(f"boundary={boundary!r}: use one of {', '.join(_NP_PAD_MODE)}")
    s, d = _pair(stride, "stride"), _pair(dilation, "dilation")
    if min(s) < 1:
        raise CnnlabError(f"stride={stride!r}: the stride must be a positive integer (1 = every position)")
    if min(d) < 1:
        raise CnnlabError(f"dilation={dilation!r}: the dilation must be a positive integer (1 = no gaps)")
    shape4, layout = _normalise(tuple(image.shape), tuple(kernel.shape))
    kh, kw = int(kernel.shape[-2]), int(kernel.shape[-1])
    pads = resolve_padding(padding, (kh, kw), d, flip=flip)
    padded = (shape4[2] + sum(pads[0]), shape4[3] + sum(pads[1]))
    extent = (d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1)
    if extent[0] > padded[0] or extent[1] > padded[1]:
        raise CnnlabError(
            f"kernel {kh}x{kw} (dilated extent {extent[0]}x{extent[1]}) is larger than the padded image "
            f"{padded[0]}x{padded[1]}; use padding='same', a smaller kernel/dilation or a larger image"
        )
    run = _fast if method == "fast" else _reference
    out = run(image, kernel, shape4, layout, pads, s, d, flip, boundary)
    # Back to the caller's layout: drop the batch axis the caller did not have (and the channel axis
    # of an H x W image convolved with a 2-D kernel).
    if len(image.shape) == 2 and layout == "depthwise":
        return out[0, 0]
    if len(image.shape) in (2, 3):
        return out[0]
    return out


def _reference(image: Any, kernel: Any, shape4: tuple[int, ...], layout: str,
               pads: tuple[tuple[int, int], tuple[int, int]], s: tuple[int, int], d: tuple[int, int],
               flip: bool, boundary: str) -> Any:
    """The readable loop: every output pixel is the sum of element-wise products of kernel and patch."""
    img = _as_numpy(image)
    ker = _as_numpy(kernel)
    dtype = _result_dtype(img, ker)
    x = img.astype(np.float64).reshape(shape4)
    w = ker.astype(np.float64)
    if flip:
        w = w[..., ::-1, ::-1]
    if layout == "depthwise":  # one 2-D kernel for every channel: fold channels into the batch
        n, c = shape4[0], shape4[1]
        x = x.reshape(n * c, 1, *shape4[2:])
        w = w.reshape(1, 1, *w.shape)
    x = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]), mode=_NP_PAD_MODE[boundary])  # type: ignore[call-overload]
    kh, kw = w.shape[-2:]
    oh = output_size(x.shape[2], kh, stride=s[0], dilation=d[0])
    ow = output_size(x.shape[3], kw, stride=s[1], dilation=d[1])
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(oh):
        for j in range(ow):
            top, left = i * s[0], j * s[1]
            # The patch under the kernel: kh x kw taps, d apart, for every image and input channel.
            patch = x[:, :, top: top + d[0] * (kh - 1) + 1: d[0], left: left + d[1] * (kw - 1) + 1: d[1]]
            for o in range(w.shape[0]):
                out[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3))
    if layout == "depthwise":
        out = out.reshape(shape4[0], shape4[1], oh, ow)
    out = out.astype(dtype)
    if _is_torch(image):
        import torch

        return torch.from_numpy(out).to(image.device)
    return out


def _pad_torch(x: torch.Tensor, pads: tuple[tuple[int, int], tuple[int, int]], boundary: str) -> torch.Tensor:
    """Pad [N, C, H, W]; zeros through F.pad, other modes by gathering np.pad's index pattern."""
    import torch
    import torch.nn.functional as F

    if boundary == "zeros":
        return F.pad(x, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    # Index gather rather than F.pad: F.pad has no "symmetric" mode and limits reflect to pad < size.
    mode = _NP_PAD_MODE[boundary]
    rows = torch.from_numpy(np.pad(np.arange(x.shape[2]), pads[0], mode=mode)).to(x.device)  # type: ignore[call-overload]
    cols = torch.from_numpy(np.pad(np.arange(x.shape[3]), pads[1], mode=mode)).to(x.device)  # type: ignore[call-overload]
    return x.index_select(2, rows).index_select(3, cols)


def _fast(image: Any, kernel: Any, shape4: tuple[int, ...], layout: str,
          pads: tuple[tuple[int, int], tuple[int, int]], s: tuple[int, int], d: tuple[int, int],
          flip: bool, boundary: str) -> Any:
    """One batched ``F.conv2d`` call (depthwise via ``groups`` for a 2-D kernel)."""
    import torch
    import torch.nn.functional as F

    is_torch = _is_torch(image)
    x = image if is_torch else torch.from_numpy(np.ascontiguousarray(image))
    w = kernel if _is_torch(kernel) else torch.from_numpy(np.ascontiguousarray(kernel))
    dtype = torch.float64 if torch.float64 in (x.dtype, w.dtype) else torch.float32
    x = x.to(dtype=dtype).reshape(shape4)
    w = w.to(dtype=dtype, device=x.device)
    if flip:
        w = torch.flip(w, dims=(-2, -1))
    channels = shape4[1]
    if layout == "depthwise":
        w = w.reshape(1, 1, *w.shape).expand(channels, 1, *w.shape).contiguous()
    groups = channels if layout == "depthwise" else 1
    if boundary == "zeros" and pads[0][0] == pads[0][1] and pads[1][0] == pads[1][1]:
        # symmetric zero padding: let conv2d pad (no padded copy of the batch)
        out = F.conv2d(x, w, stride=s, padding=(pads[0][0], pads[1][0]), dilation=d, groups=groups)
    else:
        out = F.conv2d(_pad_torch(x, pads, boundary), w, stride=s, dilation=d, groups=groups)
    return out if is_torch else out.numpy()
