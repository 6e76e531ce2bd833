"""Process-level CPU speed settings that cnnlab applies before heavy tensor work.

**glibc allocator.** A training step on the CPU allocates and frees the same multi-megabyte
activation buffers every step. glibc ``malloc`` serves blocks over its mmap threshold with fresh
``mmap`` pages and trims freed heap memory back to the kernel, so every step pays thousands of
page faults that zero the same memory again (measured for ``mnist_cnn``, batch 64: about 4,800
minor faults per step, ~40 % of the step time). PyTorch's performance guide recommends preloading
jemalloc/tcmalloc for this; ``mallopt`` reaches the same effect from inside the process with no
extra library: blocks up to 256 MiB come from the heap and up to 1 GiB of freed memory stays there
for the next step. The cost is that the process keeps its peak working set instead of returning
it. Set ``CNNLAB_MALLOC_TUNING=0`` to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 1 << 30

@functools.cache  # applied once per process
def tune_allocator() -> bool:
    """Keep freed tensor memory in glibc's heap (see the module docstring); True when applied.

    Idempotent, a no-op (False) off Linux/glibc or with ``CNNLAB_MALLOC_TUNING=0``.
    """
    applied = False
    if sys.platform.startswith("linux") and os.environ.get("CNNLAB_MALLOC_TUNING", "1") != "0":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # musl and other libcs have no mallopt
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            )
    return applied
