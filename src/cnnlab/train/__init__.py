"""Training: ``fit(config) -> run folder`` and reading runs back.

Rooms: ``config`` (TrainConfig: every option), ``recipe`` (the one model recipe of fit and load_run),
``run`` (fit as named steps), ``preflight`` (what fit checks before slow work), ``module`` (the
LightningModule), ``callbacks`` (metrics, guards, checkpoint I/O, progress), ``evaluate`` (evaluate and
predict). The run folder is :mod:`cnnlab.runfolder`; transfer learning is :mod:`cnnlab.transfer`.

Names are imported lazily so that ``import cnnlab.train`` stays cheap (Lightning loads on first use).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "config",
    "fit": "run",
    "RunResult": "run",
    "load_run": "cnnlab.runfolder.folder",
    "LoadedRun": "cnnlab.runfolder.folder",
    "build_model": "recipe",
    "evaluate": "evaluate",
    "EvalResult": "evaluate",
    "predict": "evaluate",
    "Prediction": "evaluate",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
