"""Numbers from users, checked once: finite and in range, for every float option, seed and variable.

Every float a user can type (``--lr``, ``--max-upload-mb``, ``--angles 5,10``, a Gabor ``--phases``)
and every numeric environment variable (``CNNLAB_MAX_MEMORY_GB``, ``CNNLAB_CACHE_MAX_GB``,
``CNNLAB_MAX_IMAGE_PIXELS``, ``CNNLAB_MAX_FILTERS``) goes through these
functions, so NaN, infinities and values out of range are refused the same way everywhere: one line
naming the option or variable, the value and what to give instead. Before them ``nan`` passed
``value <= 0`` (every comparison with NaN is false) and crashed later, or was used: an accuracy "for the
angle nan", a bare ``NaN`` in ``--json`` output.

* :func:`check_number`: one float (or whole number) of a keyword argument, finite and in range;
* :func:`parse_numbers`: a comma-separated list of them (``"0,45,90"``);
* :func:`check_seed`: the one seed rule, 0 to :data:`SEED_MAX` (numpy's and Lightning's range);
* :data:`MAX_SIZE`: the largest size or count, so that ``10**30`` is refused, never passed to PyTorch;
* :func:`env_number`: a numeric environment variable; a negative value is refused, never read as
  "no limit" (where 0 means "no limit", the variable's documentation says so);
* :func:`json_safe`: a record with NaN and infinities as None, so that ``--json`` prints valid JSON.
"""

from __future__ import annotations

import math
import os
from typing import Any

from .errors import ArgumentError, CnnlabError

__all__ = ["MAX_SIZE", "SEED_MAX", "check_number", "check_seed", "env_number", "json_safe", "parse_numbers"]

#: The largest seed: numpy's seed range (2**32 - 1), which Lightning's ``seed_everything`` enforces.
SEED_MAX = 2**32 - 1
#: The largest size or count a user can give (a side, a batch, a number of classes): PyTorch's sizes are
#: 64-bit, so beyond this even a shape-only (meta) tensor of two such sizes cannot be described.
MAX_SIZE = 2**31 - 1


def _show(value: float) -> str:
    """``nan``, ``inf``, ``0.5``, ``1e+300``: a number as the user would recognise it."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range_text(low: float | None, high: float | None, low_open: bool) -> str:
    if low is not None and high is not None:
        return f"{'above' if low_open else 'from'} {low:g} {'up ' if low_open else ''}to {high:g}"
    if low is not None:
        return f"above {low:g}" if low_open else f">= {low:g}"
    if high is not None:
        return f"up to {high:g}"
    return ""


def check_number(
    value: float,
    param: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    example: str = "",
) -> float:
    """``value`` when it is a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``).

    Args:
        value: The number given.
        param: The argument's library name (the CLI prints it as its flag).
        low: The smallest value allowed (None: no bound).
        high: The largest value allowed (None: no bound).
        low_open: ``low`` itself is refused (a size or a rate that must be positive).
        example: A sensible value, shown in the message ("10").

    Returns:
        ``value`` as a float.

    Raises:
        ArgumentError: ``"nan: give a finite number above 0, e.g. 10"``, naming ``param``.
    """
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and number > high
    if not math.isfinite(number) or too_low or too_high:
        where = _range_text(low, high, low_open)
        hint = f", e.g. {example}" if example else ""
        raise ArgumentError(f"{_show(value)}: give a finite number{' ' + where if where else ''}{hint}",
                            param=param)
    return number


def parse_numbers(
    text: str, param: str, *, low: float | None = None, high: float | None = None, example: str = "0.1,0.2",
    allow_empty: bool = False,
) -> list[float]:
    """``"0,45,90"`` -> ``[0.0, 45.0, 90.0]``: comma-separated finite numbers, at least one (or none, with
    ``allow_empty``).

    Raises:
        ArgumentError: Text that is not a number, NaN, an infinity or a value out of range, naming
            ``param`` and the item.
    """
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items and not allow_empty:
        raise ArgumentError(f"{text!r}: give at least one number, e.g. {example}", param=param)
    out = []
    for item in items:
        try:
            number = float(item)
        except ValueError:
            raise ArgumentError(f"{text!r}: {item!r} is not a number; give comma-separated numbers, e.g. "
                                f"{example}", param=param) from None
        try:
            out.append(check_number(number, param, low=low, high=high))
        except ArgumentError as exc:
            raise ArgumentError(f"{text!r}: {item} is not allowed ({exc.message.split(': ', 1)[1]})",
                                param=param) from None
    return out


def check_seed(seed: int, param: str = "seed") -> int:
    """The one seed rule: a whole number from 0 to :data:`SEED_MAX` (every command that takes a seed).

    Raises:
        ArgumentError: ``"must be between 0 and 4294967295"``, naming ``param``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ArgumentError(f"must be between 0 and {SEED_MAX}", param=param)
    return seed


def env_number(
    name: str,
    *,
    default: float,
    integer: bool = False,
    low: float = 0,
    low_open: bool = False,
    unit: str = "",
    zero: str = "",
    error: type[CnnlabError] = CnnlabError,
) -> float:  # an int when ``integer``
    """A numeric environment variable: its value, or ``default`` when it is unset or empty.

    Args:
        name: The variable.
        default: Its value when unset.
        integer: Only whole numbers.
        low: The smallest value (negative values never mean "no limit": they are refused).
        low_open: ``low`` itself is refused.
        unit: What it counts, for the message ("gigabytes", "pixels").
        zero: What 0 means, when it means something ("no limit"), for the message.
        error: The error class (a :class:`~cnnlab.errors.DataError` for the data layer's variables).

    Raises:
        CnnlabError: ``"CNNLAB_CACHE_MAX_GB='nan': give a finite number of gigabytes >= 0 (0 = no
            limit)"``; NaN, infinities, text and values out of range.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    value: float
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = math.nan
    ok = math.isfinite(value) and (value > low if low_open else value >= low)
    if not ok:
        kind = "whole number" if integer else "number"
        what = f" of {unit}" if unit else ""
        bound = "positive " if low_open and low == 0 else ""
        rest = "" if bound else (f" above {low:g}" if low_open else f" >= {low:g}")
        note = f" (0 = {zero})" if zero else ""
        raise error(f"{name}={text!r}: give a {bound}{kind}{what}{rest}{note}, or unset it for the default "
                    f"({_show(default)})")
    return value


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None (JSON ``null``): JSON has no such numbers, and Python's
    ``json.dumps`` would print a bare ``NaN`` that no JSON reader takes."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
