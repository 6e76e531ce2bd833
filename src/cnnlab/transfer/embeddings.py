"""Embedding cache for ``--transfer features``: run the frozen backbone once, train the head many times.

What is cached is exactly what the trainable part of the head consumes.
:func:`~cnnlab.models.surgery.split_head` cuts ``model.head`` into a parameter-free prefix (global
pooling, flatten) and the rest, so that ``model.forward_head(f) == rest(prefix(f))``; the cache holds
``prefix(forward_features(x))`` (pooled: 1,280 floats per image for efficientnet_lite0 instead of
62,720), and :mod:`cnnlab.transfer.on_embeddings` trains ``rest``, whose parameters *are* ``model.head``'s.
The backbone runs in eval mode, as the freezing policy runs it during training, so training on the
cache gives the result of training without it (same batches, same seed) up to float rounding of the
batched convolutions.

The cache file (safetensors, ``embeddings`` + ``labels``) is keyed by a hash of: the model name and
weights source given by the caller, the backbone's actual weights (state dict bytes), the head prefix,
the normalisation, and the dataset's image tensor and labels (which covers the file list, resizing and
the split). Any change gives a new file; nothing stale is ever read.

Use :func:`use_embedding_cache` to decide: the cache is exact only without augmentation, without a
fine-tune schedule and without ``--train-bn``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from .._io import save_safetensors
from ..errors import TrainingError
from ..models.surgery import HeadKind, split_head
from ..train.config import TrainConfig, Transfer

__all__ = ["Embeddings", "compute_embeddings", "default_cache_dir", "use_embedding_cache"]

_CACHE_VERSION = "1"


@dataclass
class Embeddings:
    """Embeddings of one dataset split. Unpacks as ``features, labels = compute_embeddings(...)``.

    Attributes:
        features: float32 ``[N, D]`` (or ``[N, ...]`` when the head has no pooling prefix).
        labels: int64 ``[N]``.
        path: The cache file (``None`` when caching was off).
        cache_hit: Read from the cache rather than computed.
    """

    features: torch.Tensor
    labels: torch.Tensor
    path: Path | None = None
    cache_hit: bool = False

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield self.features
        yield self.labels


def default_cache_dir() -> Path:
    """``$CNNLAB_CACHE_DIR/embeddings``, else ``~/.cache/cnnlab/embeddings``."""
    root = os.environ.get("CNNLAB_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "cnnlab") / "embeddings"


def _hash_tensor(h: Any, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}:{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")


def _backbone_digest(model: nn.Module) -> str:
    h = hashlib.blake2b(digest_size=16)
    head_prefix = "head."
    for name, t in model.state_dict().items():
        if not name.startswith(head_prefix):
            h.update(name.encode())
            _hash_tensor(h, t)
    return h.hexdigest()


def _normalize(mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    from ..data.transforms import Normalize  # the data module's own: the cache sees what training sees

    return Normalize(mean, std)


def _batches(dataset: Any, batch_size: int) -> Any:
    n = len(dataset)
    for start in range(0, n, batch_size):
        index = torch.arange(start, min(start + batch_size, n))
        if hasattr(dataset, "get_batch"):
            yield dataset.get_batch(index)
        else:
            yield dataset.images[index], dataset.labels[index]


def compute_embeddings(
    model: nn.Module,
    dataset: Any,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 64,
    cache_dir: str | os.PathLike[str] | None = None,
    key_parts: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Embeddings:
    """Embeddings ``prefix(model.forward_features(normalize(x)))`` of every image, cached on disk.

    Args:
        model: A cnnlab model; run in eval mode without gradients (its mode is restored afterwards).
        dataset: An ``ImageTensorDataset`` (uint8 ``images`` ``[N,C,H,W]``, ``labels``, ``get_batch``).
        mean: Normalisation mean (as the training data module uses).
        std: Normalisation std.
        batch_size: Images per forward pass.
        cache_dir: Cache folder; ``None`` disables the cache.
        key_parts: Extra identity of the run (model name, weights source ...), part of the key.
        progress: Called with ``(images done, total)`` after every batch of a computation.

    Returns:
        :class:`Embeddings` (unpacks to ``(features, labels)``).
    """
    prefix, _ = split_head(model)
    labels = torch.as_tensor(dataset.labels).long()
    path = None
    if cache_dir is not None:
        h = hashlib.blake2b(digest_size=16)
        ident = {"version": _CACHE_VERSION, "parts": key_parts or {}, "backbone": _backbone_digest(model),
                 "prefix": repr(prefix), "mean": list(mean), "std": list(std)}
        h.update(json.dumps(ident, sort_keys=True, default=str).encode())
        if hasattr(dataset.images, "fingerprint"):  # streamed from its files: their key stands for the pixels
            h.update(dataset.images.fingerprint().encode())
        else:
            _hash_tensor(h, torch.as_tensor(dataset.images))
        _hash_tensor(h, labels)
        name = str((key_parts or {}).get("model", type(model).__name__)).replace(":", "-").replace("/", "-")
        path = Path(cache_dir) / f"{name}-{h.hexdigest()}.safetensors"
        if path.is_file():
            from safetensors.torch import load_file

            try:
                stored = load_file(str(path))
                return Embeddings(stored["embeddings"], stored["labels"], path, cache_hit=True)
            except Exception:  # a damaged cache file is recomputed, never trusted
                pass
    device = next(model.parameters()).device
    normalize = _normalize(mean, std).to(device)
    was_training = model.training
    model.eval()
    forward_features = cast(Any, model).forward_features
    chunks, done = [], 0
    try:
        with torch.inference_mode():
            for x, _y in _batches(dataset, batch_size):
                chunks.append(prefix(forward_features(normalize(x.to(device)))).float().cpu())
                done += x.shape[0]
                if progress is not None:
                    progress(done, len(dataset))
    finally:
        model.train(was_training)
    features = torch.cat(chunks) if chunks else torch.empty(0)
    if path is not None:
        meta = {"key": json.dumps(key_parts or {}, sort_keys=True, default=str), "images": str(len(dataset))}
        save_safetensors(path, {"embeddings": features, "labels": labels}, metadata=meta)
    return Embeddings(features, labels, path, cache_hit=False)


def use_embedding_cache(cfg: TrainConfig) -> bool:
    """Whether ``features`` training can run on cached embeddings (exactly) for this config.

    Raises:
        TrainingError: ``--head logreg`` in a setting where embeddings are not fixed.
    """
    if cfg.transfer is not Transfer.FEATURES:
        return False
    fixed = cfg.augment == "none" and not cfg.train_bn and not cfg.fine_tune_epochs
    if cfg.head is HeadKind.LOGREG and not fixed:
        raise TrainingError(
            "logreg trains on fixed embeddings: use `augment` none and no `train_bn`", param="head"
        )
    return fixed
