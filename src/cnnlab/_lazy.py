"""Lazy package exports: a package's public names import their module on first use (cheap imports)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` (PEP 562) for ``package``.

    Args:
        package: The package's ``__name__``.
        exports: ``{public name: submodule}``, e.g. ``{"fit": "run"}`` (or ``"cnnlab.runfolder.folder"``).

    Returns:
        The function to assign to the package's ``__getattr__``.
    """

    def getattr_(name: str) -> Any:
        if name in exports:
            module = exports[name]  # a submodule, or an absolute name for a module of another room
            return getattr(importlib.import_module(module if module.startswith("cnnlab.") else f".{module}",
                                                   package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return getattr_
