"""Classical image convolution and filter banks (see convolve.py, banks.py, layers.py)."""

from .convolve import Boundary, Method, Padding, convolve2d, output_size

__all__ = ["Boundary", "Method", "Padding", "convolve2d", "output_size"]
