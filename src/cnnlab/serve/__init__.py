"""``cnnlab serve``: a FastAPI app and one static page over a model (see :mod:`cnnlab.serve.app`).

Importing this package imports torch and FastAPI; ``import cnnlab`` alone does not.
"""

from .app import create_app

__all__ = ["create_app"]
