"""The ``cnnlab`` command line: thin Typer commands over the public API (see DESIGN.md).

The commands live in :mod:`cnnlab._cli`, one module per area; importing them registers them.
"""

from __future__ import annotations

from ._cli import (  # noqa: F401  (importing a command module registers its commands)
    data,
    demo,
    filters,
    insight,
    interpret,
    models,
    report,
    serve,
    train,
)
from ._cli._app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
