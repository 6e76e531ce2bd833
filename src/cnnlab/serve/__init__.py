"""``cnnlab serve``: a FastAPI app and one static page over a model (see :mod:`cnnlab.serve.app`).

Names are imported lazily: importing :mod:`cnnlab.serve.listen` (the socket, checked before the model
loads) does not import torch or FastAPI.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {"create_app": "app"}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
