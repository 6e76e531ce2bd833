"""Training: a LightningModule, callbacks and ``fit(config) -> run folder``.

Names are imported lazily so that ``import cnnlab.train`` stays cheap (Lightning loads on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "fit": "run",
    "RunResult": "run",
    "load_run": "run",
    "LoadedRun": "run",
    "evaluate": "evaluate",
    "EvalResult": "evaluate",
    "predict": "evaluate",
    "Prediction": "evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
