"""Slice batches hold the images torchvision's per-sample FashionMNIST pipeline gives (its speed ratio is
measured in benchmarks/data_loading.py, not here)."""

from __future__ import annotations

import gzip
from pathlib import Path

import torch

from cnnlab.data import load_data
from cnnlab.data.datamodule import SliceBatches
from cnnlab.data.datasets import sample_dir
from cnnlab.data.transforms import Normalize


def test_slice_batches_equal_torchvision_fashion_mnist_to_tensor(tmp_path: Path) -> None:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in sample_dir().iterdir():
        (raw / f.name.removesuffix(".gz")).write_bytes(gzip.decompress(f.read_bytes()))
    tv = datasets.FashionMNIST(str(tmp_path), train=True, transform=transforms.ToTensor(), download=False)
    reference = DataLoader(tv, batch_size=64, shuffle=False, num_workers=0)
    ours = SliceBatches(load_data("sample").train, batch_size=64, shuffle=False)
    norm = Normalize((0.0,), (1.0,))
    batches = 0
    for (x, y), (x_ref, y_ref) in zip(ours, reference, strict=False):
        torch.testing.assert_close(norm(x), x_ref, rtol=0, atol=1e-7)
        assert torch.equal(y, y_ref)
        batches += 1
    assert batches == len(tv) // 64 + (len(tv) % 64 > 0)
