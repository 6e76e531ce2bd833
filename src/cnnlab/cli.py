"""The ``cnnlab`` command line: thin Typer commands over the public API (see DESIGN.md).

The commands live in :mod:`cnnlab._cli`, one module per area; importing them registers them.
"""

from __future__ import annotations

from ._cli import data, demo, filters, interpret, models, serve, train  # noqa: F401  (registers commands)
from ._cli._app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
