"""Limits that keep a filter bank and its responses in memory, checked before anything is allocated.

* At most ``CNNLAB_MAX_FILTERS`` kernels in one bank (default 1024).
* Kernels at most :data:`MAX_KERNEL_SIDE` pixels a side: a larger sigma or window is not a filter for an
  image (and a 257x257 kernel already costs 66,049 multiply-adds per output pixel).
* Kernels plus responses within the one memory budget of cnnlab (:func:`cnnlab.memory.check_memory`,
  ``CNNLAB_MAX_MEMORY_GB``), checked where they are allocated.

A refused request raises :class:`BankParamError` (for a bank parameter: it names the parameter, so the
CLI can name its own option) or :class:`cnnlab.errors.CnnlabError`, one line with the limit and how to
raise it. Before these limits, ``--thetas 1000000`` allocated 5.3 GB (issue 12).
"""

from __future__ import annotations

import reprlib

from ..errors import ArgumentError
from ..values import env_number

#: Environment variable: the most kernels one bank may hold.
ENV_MAX_FILTERS = "CNNLAB_MAX_FILTERS"
DEFAULT_MAX_FILTERS = 1024
#: The largest kernel side in pixels.
MAX_KERNEL_SIDE = 257


class BankParamError(ArgumentError):
    """A bad value of one bank parameter.

    Attributes:
        param: The parameter's name (e.g. "thetas").
        value: The value given.
        reason: What is wrong and the fix, without the parameter's name.
    """

    def __init__(self, param: str, value: object, reason: str) -> None:
        super().__init__(f"={reprlib.repr(value)}: {reason}", param=param)
        self.value = value
        self.reason = reason


def _env_limit(name: str, default: int) -> int:
    return int(env_number(name, default=default, integer=True, low=0, low_open=True))


def max_filters() -> int:
    """The kernel-count limit: ``$CNNLAB_MAX_FILTERS`` or 1024."""
    return _env_limit(ENV_MAX_FILTERS, DEFAULT_MAX_FILTERS)


def check_filter_count(param: str, value: object, count: int, detail: str = "") -> None:
    """Refuse a bank of more than :func:`max_filters` kernels.

    Args:
        param: The parameter that sets the count (the largest factor of it).
        value: Its value, as given.
        count: The number of kernels the bank would hold.
        detail: How the count comes about, e.g. "3 frequencies x 1000000 thetas".

    Raises:
        BankParamError: over the limit.
    """
    limit = max_filters()
    if count > limit:
        how = f"{detail} = " if detail else ""
        raise BankParamError(param, value, f"{how}{count:,} kernels, over the limit of {limit:,}; "
                                           f"give fewer, or raise the limit with {ENV_MAX_FILTERS}={count}")


def check_kernel_side(param: str, value: object, side: int, fix: str) -> None:
    """Refuse a kernel more than :data:`MAX_KERNEL_SIDE` pixels a side.

    Args:
        param: The parameter that sets the size.
        value: Its value, as given.
        side: The side the kernel would get.
        fix: What to change, e.g. "use smaller sigmas".

    Raises:
        BankParamError: naming ``param``.
    """
    if side > MAX_KERNEL_SIDE:
        raise BankParamError(param, value, f"needs a {side:,}x{side:,} kernel, over the largest allowed "
                                           f"({MAX_KERNEL_SIDE}x{MAX_KERNEL_SIDE}); {fix}")
