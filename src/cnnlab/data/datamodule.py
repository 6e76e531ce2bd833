"""A LightningDataModule over a :class:`DataBundle`: batches are index slices of in-memory tensors.

The loaders are plain iterables (:class:`SliceBatches`), not ``DataLoader``s: each batch is one
``index_select`` on the split's uint8 tensor, with no per-sample ``__getitem__``, no PIL and no worker
processes. They shard by DDP rank themselves (every rank draws the same seeded permutation for an
epoch and takes every ``world_size``-th index), so Lightning's ``use_distributed_sampler`` has nothing
to wrap: it only replaces samplers of ``DataLoader`` objects, and passing ``use_distributed_sampler=False``
to the Trainer is harmless but not required.

On the device, ``on_after_batch_transfer`` applies :class:`BatchAugment` (training batches only) and
then :class:`Normalize`, giving ``(float32 [B, C, H, W], int64 [B])``. The LightningModule must not
override ``on_after_batch_transfer`` itself (Lightning would then use the data module's and warn).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning as L
import torch

from ..errors import DataArgumentError
from .core import DataBundle, ImageTensorDataset
from .series_augment import SeriesAugment
from .transforms import BatchAugment, Normalize, get_preset

Batch = tuple[torch.Tensor, torch.Tensor]


def _dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class SliceBatches:
    """Iterate over a dataset in batches sliced from its tensors, shuffled per epoch and sharded per rank.

    Args:
        dataset: The split.
        batch_size: Samples per batch.
        shuffle: Draw a fresh permutation each epoch from ``seed + epoch`` (the same on every rank).
        seed: Base seed.
        rank: This process's rank; ``world_size``: number of processes. Each rank gets a disjoint
            shard; with ``pad=True`` the permutation is padded by wrapping around so all ranks get the
            same number of batches (as ``DistributedSampler`` does), else shards may differ by one.
        drop_last: Drop an incomplete last batch. A last batch of one sample is always dropped when
            ``shuffle`` is on (BatchNorm cannot train on a single sample).
        prefetch: Batches gathered ahead in a background thread (0 = gather inline).
        on_epoch: Called with the epoch number when an epoch's iteration starts.
    """

    #: Lightning inspects ``loader.batch_sampler``/``loader.sampler``; batching is our own.
    batch_sampler = None

    def __init__(
        self, dataset: ImageTensorDataset, *, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
        world_size: int = 1, pad: bool = False, drop_last: bool = False, prefetch: int = 0,
        on_epoch: Callable[[int], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise DataArgumentError(f"{batch_size}: must be at least 1", param="batch_size")
        self.dataset, self.batch_size, self.shuffle, self.seed = dataset, batch_size, shuffle, seed
        self.rank, self.world_size, self.pad, self.drop_last = rank, world_size, pad, drop_last
        self.prefetch, self.on_epoch = prefetch, on_epoch
        self.epoch = 0
        self._explicit_epoch = False

    @property
    def sampler(self) -> SliceBatches:
        """Itself: Lightning calls ``loader.sampler.set_epoch(epoch)`` each epoch, which makes resumed
        runs continue the same shuffling/augmentation streams."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next iteration (Lightning calls this; otherwise it counts up)."""
        self.epoch, self._explicit_epoch = epoch, True

    def indices(self, epoch: int) -> torch.Tensor:
        """This rank's sample order for ``epoch``."""
        n = len(self.dataset)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + epoch))
        else:
            order = torch.arange(n)
        if self.world_size > 1:
            if self.pad and n % self.world_size:
                extra = self.world_size - n % self.world_size
                order = torch.cat([order, order[:extra].repeat(extra // max(n, 1) + 1)[:extra]])
            order = order[self.rank :: self.world_size]
        return order

    def _batches(self, order: torch.Tensor) -> list[torch.Tensor]:
        chunks = list(order.split(self.batch_size))
        if chunks and len(chunks[-1]) < self.batch_size and (
            self.drop_last or (self.shuffle and len(chunks[-1]) == 1 and len(chunks) > 1)
        ):
            chunks.pop()
        return chunks

    def __len__(self) -> int:
        return len(self._batches(self.indices(self.epoch)))

    def __iter__(self) -> Iterator[Batch]:
        epoch = self.epoch
        if self.on_epoch is not None:
            self.on_epoch(epoch)
        chunks = self._batches(self.indices(epoch))
        if not self._explicit_epoch:
            self.epoch += 1
        self._explicit_epoch = False
        if self.prefetch <= 0:
            for idx in chunks:
                yield self.dataset.get_batch(idx)
            return
        yield from _prefetched(self.dataset, chunks, self.prefetch)


def _prefetched(dataset: ImageTensorDataset, chunks: Sequence[torch.Tensor], depth: int) -> Iterator[Batch]:
    """Gather batches in a background thread (index_select releases the GIL) ``depth`` batches ahead."""
    q: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for idx in chunks:
                if stop.is_set():
                    return
                q.put(dataset.get_batch(idx))
        except BaseException as exc:  # handed to the consumer and re-raised there
            q.put(exc)
            return
        q.put(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.01)


class ImageDataModule(L.LightningDataModule):
    """Train/val loaders over a :class:`DataBundle`, with GPU-side augmentation and normalisation.

    Args:
        bundle: The loaded data.
        batch_size: Samples per batch.
        augment: Preset name for the training split ("none", "light", "standard", "strong").
        mean: Per-channel mean in [0, 1] units (one value is broadcast).
        std: Per-channel std in [0, 1] units.
        seed: Seed of the shuffling and augmentation streams (epoch ``e`` uses ``seed + e``).
        num_workers: Batches gathered ahead in a background thread (slicing needs no worker processes).
    """

    def __init__(
        self, bundle: DataBundle, *, batch_size: int = 64, augment: str = "none",
        mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,), seed: int = 0, num_workers: int = 0,
    ) -> None:
        super().__init__()
        get_preset(augment)
        self.bundle, self.batch_size, self.seed, self.num_workers = bundle, batch_size, seed, num_workers
        self.augment_name = augment
        self.augment: BatchAugment | SeriesAugment
        if bundle.is_series:  # float [B, C, L]: jitter, scaling, window slicing (cnnlab.data.series_augment)
            self.augment = SeriesAugment(augment, seed=seed)
        else:
            self.augment = BatchAugment(augment, seed=seed)
        self.normalize = Normalize(mean, std)

    @property
    def classes(self) -> list[str]:
        return self.bundle.classes

    @property
    def num_classes(self) -> int:
        return len(self.bundle.classes)

    def _rank(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return int(trainer.global_rank), int(trainer.world_size)
        return _dist_info()

    def _on_train_epoch(self, epoch: int) -> None:
        rank, _ = self._rank()
        # One augmentation stream per (seed, epoch, rank): resumable and different on every rank.
        self.augment.reseed(self.seed * 1_000_003 + epoch * 1009 + rank)

    def train_dataloader(self) -> SliceBatches:
        rank, world = self._rank()
        return SliceBatches(self.bundle.train, batch_size=self.batch_size, shuffle=True, seed=self.seed,
                            rank=rank, world_size=world, pad=True, prefetch=self.num_workers,
                            on_epoch=self._on_train_epoch)

    def val_dataloader(self) -> SliceBatches:
        rank, world = self._rank()
        return SliceBatches(self.bundle.val, batch_size=self.batch_size, shuffle=False, rank=rank,
                            world_size=world, prefetch=self.num_workers)

    def test_dataloader(self) -> SliceBatches:
        return self.val_dataloader()

    def transform_batch(self, batch: Batch, *, train: bool) -> Batch:
        """uint8 images (or float series) -> (augmented if ``train``) normalised float32 batch, on its device.
        """
        images, labels = batch
        if train:
            images = self.augment(images)
        return self.normalize.to(images.device)(images), labels

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = getattr(self, "trainer", None)
        training = bool(trainer is not None and trainer.training)
        return self.transform_batch(batch, train=training)
