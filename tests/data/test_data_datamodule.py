"""ImageDataModule / SliceBatches: coverage, shuffling, DDP shards, augmentation on training only."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from cnnlab.data import DataBundle, ImageTensorDataset
from cnnlab.data.datamodule import ImageDataModule, SliceBatches


def _bundle(n_train: int = 50, n_val: int = 20) -> DataBundle:
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> ImageTensorDataset:
        images = torch.randint(0, 256, (n, 1, 12, 12), generator=g, dtype=torch.uint8)
        images[:, :, :, :6] = 0  # asymmetric, so a flip or rotation changes the batch
        return ImageTensorDataset(images, torch.arange(n) % 2, ["a", "b"])

    tr = split(n_train)
    return DataBundle("toy", ["a", "b"], tr, split(n_val), (1, 12, 12), [])


def test_epoch_covers_each_sample_once_and_reshuffles() -> None:
    ds = _bundle().train
    loader = SliceBatches(ds, batch_size=8, shuffle=True, seed=1)
    epochs = []
    for _ in range(2):
        labels_seen, images = [], []
        for x, y in loader:
            assert x.dtype == torch.uint8 and x.shape[1:] == (1, 12, 12) and y.dtype == torch.int64
            images.append(x)
            labels_seen.append(y)
        epochs.append(torch.cat(images))
    # every sample exactly once: compare the sorted flattened images
    for got in epochs:
        assert got.shape[0] == 50
        assert torch.equal(got.flatten(1).sum(1).sort().values, ds.images.flatten(1).sum(1).sort().values)
    assert not torch.equal(epochs[0], epochs[1])
    again = SliceBatches(ds, batch_size=8, shuffle=True, seed=1)
    assert torch.equal(torch.cat([x for x, _ in again]), epochs[0])
    assert len(loader) == 7


def test_single_sample_last_batch_dropped_when_training() -> None:
    ds = _bundle(n_train=17).train
    assert [len(y) for _, y in SliceBatches(ds, batch_size=8, shuffle=True)] == [8, 8]
    assert [len(y) for _, y in SliceBatches(ds, batch_size=8, shuffle=False)] == [8, 8, 1]


def test_ddp_shards_are_disjoint_and_equal_length() -> None:
    ds = _bundle(n_train=51).train
    shards = [
        SliceBatches(ds, batch_size=4, shuffle=True, seed=3, rank=r, world_size=2, pad=True).indices(0)
        for r in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) == 26
    union = torch.cat(shards)
    assert set(union.tolist()) == set(range(51))
    assert len(set(shards[0].tolist()) & set(shards[1].tolist())) <= 1  # only the wrap-around pad
    val = [SliceBatches(ds, batch_size=4, shuffle=False, rank=r, world_size=2).indices(0) for r in range(2)]
    assert sorted(torch.cat(val).tolist()) == list(range(51))


def test_prefetch_gives_identical_batches() -> None:
    ds = _bundle().train
    inline = [x for x, _ in SliceBatches(ds, batch_size=8, shuffle=True, seed=2)]
    fetched = [x for x, _ in SliceBatches(ds, batch_size=8, shuffle=True, seed=2, prefetch=2)]
    assert all(torch.equal(a, b) for a, b in zip(inline, fetched, strict=True))


class _Recorder(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(144, 2))
        self.train_batches: list[torch.Tensor] = []
        self.val_batches: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        self.train_batches.append(batch[0].clone())
        return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        self.val_batches.append(batch[0].clone())

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fit(bundle: DataBundle, seed: int, epochs: list[int] | None = None) -> _Recorder:
    model = _Recorder()
    dm = ImageDataModule(bundle, batch_size=16, augment="standard", mean=(0.5,), std=(0.25,), seed=seed)
    if epochs is not None:
        seen = dm._on_train_epoch
        dm._on_train_epoch = lambda e: (epochs.append(e), seen(e))[-1]  # type: ignore[method-assign]
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=dm)
    return model


def test_lightning_augments_training_only_and_is_deterministic() -> None:
    bundle = _bundle()
    epochs: list[int] = []
    a, b = _fit(bundle, seed=5, epochs=epochs), _fit(bundle, seed=5)
    assert epochs == [0, 1]
    assert len(a.train_batches) == 8 and len(a.val_batches) == 4  # 2 epochs x (4 train, 2 val) batches
    assert all(torch.equal(x, y) for x, y in zip(a.train_batches, b.train_batches, strict=True))
    plain = torch.cat(a.val_batches[:2])
    expected_val = (bundle.val.images.float() / 255 - 0.5) / 0.25  # val: normalised only, in order
    assert plain.dtype == torch.float32 and torch.allclose(plain, expected_val, atol=1e-6)
    # training batches are augmented: most differ from every normalised original image
    originals = ((bundle.train.images.float() / 255 - 0.5) / 0.25).flatten(1)
    nearest = torch.cdist(a.train_batches[0].flatten(1), originals).min(dim=1).values
    assert (nearest > 1e-3).float().mean() > 0.5
    c = _fit(bundle, seed=6)
    assert not torch.equal(c.train_batches[0], a.train_batches[0])
