"""The in-memory dataset types every loader returns, and deterministic stratified splitting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass(frozen=True)
class SkippedFile:
    """A file that was found but not used, and why (e.g. "truncated file")."""

    path: str
    reason: str


class RowReader(Protocol):
    """Reads the images of a batch from where a split's pixels live (a cache file, the image files)."""

    def read(self, index: torch.Tensor) -> torch.Tensor: ...


class ImageTensorDataset(Dataset[tuple[torch.Tensor, int]]):
    """A whole split as one uint8 tensor; batches are index slices of it.

    Attributes:
        images: uint8 tensor [N, C, H, W] (may be backed by a memory-mapped cache file), or a
            :class:`~cnnlab.data.stream.StreamingImages` that decodes its files when read.
        labels: int64 tensor [N].
        classes: Class names; ``labels`` index into it.
        paths: Source file of each sample, or None (IDX data).
        reader: Where :meth:`get_batch` reads a batch's images from instead of indexing ``images``
            (:class:`~cnnlab.data.stream.FileRows` for a cache file: the pixels stay out of the
            process's memory), or None.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        classes: list[str],
        paths: list[str] | None = None,
        *,
        reader: RowReader | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 [N,C,H,W], got {images.dtype} {list(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels shape {list(labels.shape)} does not match {images.shape[0]} images")
        if paths is not None and len(paths) != images.shape[0]:
            raise ValueError(f"{len(paths)} paths for {images.shape[0]} images")
        self.images = images
        self.labels = labels.to(torch.int64)
        self.classes = list(classes)
        self.paths = paths
        self.reader = reader

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])

    def get_batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather a batch: uint8 [B, C, H, W] and int64 [B] for the sample indices ``index``."""
        images = self.reader.read(index) if self.reader is not None else self.images.index_select(0, index)
        return images, self.labels.index_select(0, index)

    def class_counts(self) -> list[int]:
        """Number of samples per class, in ``classes`` order."""
        return torch.bincount(self.labels, minlength=len(self.classes)).tolist()

    def subset(self, index: torch.Tensor | np.ndarray) -> ImageTensorDataset:
        """A new dataset holding only the samples at ``index`` (a copy, in that order)."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.int64)
        paths = [self.paths[i] for i in idx.tolist()] if self.paths is not None else None
        return ImageTensorDataset(self.images.index_select(0, idx), self.labels[idx], self.classes, paths)


@dataclass
class DataBundle:
    """A loaded dataset: its class names, train and val splits, image (or series) shape and skipped files.

    For MNIST-style data the ``val`` split is the official test split.
    """

    spec: str
    classes: list[str]
    train: ImageTensorDataset
    val: ImageTensorDataset
    image_shape: tuple[int, ...]  # (C, H, W); (C, L) for series
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def is_series(self) -> bool:
        """True for series data (``ucr:``/``series:``; float ``[N, C, L]``), False for images."""
        return len(self.image_shape) == 2

    def summary(self) -> dict[str, Any]:
        """The stable ``cnnlab data --json`` document."""
        return {
            "classes": list(self.classes),
            "splits": {"train": len(self.train), "val": len(self.val)},
            "image_shape": list(self.image_shape),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }


def stratified_split(
    labels: np.ndarray, val_fraction: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into train/val, class by class, deterministically.

    Each class contributes ``round(n_c * val_fraction)`` samples to val (at least one when the class
    has two or more samples and the fraction is positive), chosen by a permutation seeded with ``seed``.

    Args:
        labels: int array [N].
        val_fraction: Fraction in [0, 1) that goes to val.
        seed: Seed of the per-class permutation.

    Returns:
        (train indices, val indices), each sorted ascending.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = rng.permutation(idx)
        n_val = round(len(idx) * val_fraction)
        if val_fraction > 0 and len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        val.append(perm[:n_val])
        train.append(perm[n_val:])
    empty = np.zeros(0, np.int64)
    return np.sort(np.concatenate(train or [empty])), np.sort(np.concatenate(val or [empty]))


def stratified_take(labels: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` samples, keeping the class proportions (deterministic, no randomness).

    Each class gets its proportional quota (largest remainders get the leftovers) and contributes its
    first samples in order.

    Returns:
        Sorted indices (all of them when ``n >= len(labels)``).
    """
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / len(labels)
    quota = np.floor(exact).astype(int)
    for j in np.argsort(-(exact - quota), kind="stable")[: n - int(quota.sum())]:
        quota[j] += 1
    picked = [np.flatnonzero(labels == c)[:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(picked))
