"""Transfer learning: what trains in each mode, the embedding cache and training a head on it.

Rooms: ``freezing`` (which parameters train in each ``--transfer`` mode, batch-norm modes, optimizer
parameter groups; no Lightning, so ``load_run`` can rebuild a frozen model), ``policy`` (the freeze-policy
callback of training, the fine-tune schedule), ``embeddings`` (the frozen backbone run once, its pooled
output cached) and ``on_embeddings`` (the head trained on that cache, ``--head logreg`` in closed form).

Names are imported lazily so that ``import cnnlab.transfer`` stays cheap (Lightning loads on first use).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "FreezePolicy": "policy",
    "TransferMode": "freezing",
    "apply_transfer": "freezing",
    "compute_embeddings": "embeddings",
    "default_cache_dir": "embeddings",
    "fit_logreg_head": "on_embeddings",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
