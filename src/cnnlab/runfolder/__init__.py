"""The run folder (DESIGN.md, "A run folder is the unit of work"): its files, reading it back, how a run ends.

Rooms: ``folder`` (the layout, writing the set-up files, resume, :func:`load_run`), ``schema`` (each small
file checked before use: one line naming the file, the key and the fix) and ``outcome`` (:class:`RunResult`,
"nothing to do", the best epoch kept after a NaN or a full disk).

Names are imported lazily: ``import cnnlab.runfolder`` does not load torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "LoadedRun": "folder",
    "load_run": "folder",
    "RunFileError": "schema",
    "RunResult": "outcome",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
