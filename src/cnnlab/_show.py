"""How a result shows itself in a notebook: the figure function registered for its type.

Results are plain data (:mod:`cnnlab.interpret`, :mod:`cnnlab.train`); their figures live in
:mod:`cnnlab.report`. A result's ``_repr_png_``/``_repr_html_`` asks this registry, which imports nothing
of either room: :mod:`cnnlab.report.notebook` registers cnnlab's own figures when first needed (named
here as a provider, like the model registry's providers), and anyone may register a figure for a type.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["html_of", "png_of", "register_html", "register_png"]

#: The module whose import registers cnnlab's own figures for its results.
FIGURES = "cnnlab.report.notebook"

_PNG: dict[type, Callable[[Any], bytes]] = {}
_HTML: dict[type, Callable[[Any], str]] = {}
F = TypeVar("F", bound=Callable[..., Any])


def register_png(cls: type) -> Callable[[F], F]:
    """Decorator: ``fn(result) -> PNG bytes`` draws results of type ``cls`` (and its subclasses)."""

    def deco(fn: F) -> F:
        _PNG[cls] = fn
        return fn

    return deco


def register_html(cls: type) -> Callable[[F], F]:
    """Decorator: ``fn(result) -> HTML`` shows results of type ``cls`` (and its subclasses) as HTML."""

    def deco(fn: F) -> F:
        _HTML[cls] = fn
        return fn

    return deco


def _lookup(table: dict[type, Callable[[Any], Any]], obj: object) -> Callable[[Any], Any]:
    importlib.import_module(FIGURES)  # registers the built-in figures (once: later calls are a dict lookup)
    for cls in type(obj).__mro__:
        if cls in table:
            return table[cls]
    raise TypeError(f"no figure is registered for {type(obj).__name__}; register one with cnnlab._show")


def png_of(obj: object) -> bytes:
    """The PNG of ``obj`` drawn by the function registered for its type."""
    return bytes(_lookup(_PNG, obj)(obj))


def html_of(obj: object) -> str:
    """The HTML of ``obj`` made by the function registered for its type."""
    return str(_lookup(_HTML, obj)(obj))
