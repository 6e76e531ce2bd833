"""Classical image convolution and filter banks.

* :func:`convolve2d` — padding, stride, dilation, flip; a readable numpy loop and a fast torch path.
* :func:`make_bank` / :func:`list_banks` / :func:`apply_bank` — registered banks (Gabor, Sobel, Haar, ...).
* :class:`FixedFilterConv2d` — a conv layer initialised from a bank, frozen or trainable.
"""

from ._limits import BankParamError
from .banks import (
    DerivedResponse,
    FilterBank,
    apply_bank,
    list_banks,
    make_bank,
    register_bank,
    response_shape,
)
from .convolve import Boundary, Method, Padding, convolve2d, output_size
from .layers import FixedFilterConv2d

__all__ = [
    "BankParamError",
    "Boundary",
    "DerivedResponse",
    "FilterBank",
    "FixedFilterConv2d",
    "Method",
    "Padding",
    "apply_bank",
    "convolve2d",
    "list_banks",
    "make_bank",
    "output_size",
    "register_bank",
    "response_shape",
]
