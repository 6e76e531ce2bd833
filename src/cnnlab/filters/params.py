"""A filter bank's parameters as a user writes them (degrees, comma lists, ``KEY=VALUE``) -> ``make_bank``.

The CLI's ``cnnlab filters --thetas 4 --param sigmas=1,2`` and any other caller go through
:func:`bank_params` and :func:`build_bank`: angles are written in degrees (the library takes radians), and
an error about one parameter names the option the user typed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import CnnlabError

if TYPE_CHECKING:
    from .banks import FilterBank

__all__ = ["BANK_OPTIONS", "bank_params", "build_bank"]

#: Options that belong to one bank: option -> (bank, parameter).
BANK_OPTIONS = {"--frequencies": ("gabor", "frequencies"), "--thetas": ("gabor", "thetas"),
                "--sigmas": ("gabor", "sigmas"), "--phases": ("gabor", "phases"),
                "--bandwidth": ("gabor", "bandwidth"), "--gamma": ("gabor", "gamma"),
                "--haar-form": ("haar", "form")}


def _numbers(option: str, text: str) -> list[float]:
    """Parse "0.1,0.2" into floats, or a one-line error naming the option."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CnnlabError(f"{option} {text}: expected comma-separated numbers, e.g. 0.1,0.2") from None
    if not values:
        raise CnnlabError(f"{option} {text!r}: give at least one number")
    return values


def _value(text: str) -> Any:
    """A ``KEY=VALUE`` value: int, float, a comma list of them, or the text itself."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    out: list[Any] = []
    for p in parts:
        try:
            out.append(int(p))
        except ValueError:
            try:
                out.append(float(p))
            except ValueError:
                out.append(p)
    return out if "," in text else (out[0] if out else text)


def bank_params(bank: str, options: dict[str, Any],
                params: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Collect the bank's keyword parameters from its own options and repeated ``KEY=VALUE`` items.

    Angles are in degrees (the library takes radians).

    Args:
        bank: The bank name.
        options: Bank options as given (``{"--thetas": "4", "--gamma": None, ...}``; None = not given).
        params: The ``KEY=VALUE`` items (``--param``).

    Returns:
        The keyword parameters, and for each one how the user wrote it (e.g. ``"--thetas 4"``), so that an
        error about a parameter can name the option.
    """
    given = {opt: v for opt, v in options.items() if v is not None}
    wrong = [opt for opt in given if BANK_OPTIONS[opt][0] != bank]
    if wrong:
        owner = BANK_OPTIONS[wrong[0]][0]
        raise CnnlabError(f"{', '.join(wrong)} only apply to --bank {owner}; "
                          f"use --param KEY=VALUE for {bank}")
    kw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt, text in given.items():
        key = BANK_OPTIONS[opt][1]
        sources[key] = f"{opt} {text}"
        if key == "thetas":
            vals = _numbers(opt, text)
            count = "," not in text and vals[0].is_integer()
            kw[key] = int(vals[0]) if count else [math.radians(v) for v in vals]  # a count, or degrees
        elif key == "phases":
            kw[key] = [math.radians(v) for v in _numbers(opt, text)]
        elif key in ("frequencies", "sigmas"):
            kw[key] = _numbers(opt, text)
        else:
            kw[key] = text
    for item in params:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CnnlabError(f"--param {item}: expected KEY=VALUE, e.g. --param sigmas=1,2")
        kw[key.strip()] = _value(text)
        sources[key.strip()] = f"--param {item}"
    return kw, sources


def build_bank(bank: str, kw: dict[str, Any], sources: dict[str, str]) -> FilterBank:
    """``make_bank`` with errors about a parameter naming the option the user typed."""
    from ._limits import BankParamError
    from .banks import make_bank

    try:
        return make_bank(bank, **kw)
    except BankParamError as exc:
        if exc.param in sources:
            raise CnnlabError(f"{sources[exc.param]}: {exc.reason}") from None
        raise
