"""Side-by-side speed ratio: slice batches vs torchvision's per-sample FashionMNIST pipeline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from cnnlab.data import load_data
from cnnlab.data.datamodule import SliceBatches
from cnnlab.data.transforms import Normalize


@pytest.fixture
def one_thread() -> Iterator[None]:
    # Both sides single-threaded, as in benchmarks/data_loading.py (OpenMP waits dominate on a busy box).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _time(batches: object, n: int, norm: Normalize | None) -> float:
    t0 = time.perf_counter()
    for i, (x, _) in enumerate(batches):  # type: ignore[arg-type]
        if norm is not None:
            x = norm(x)
        assert x.dtype == torch.float32
        if i + 1 == n:
            break
    return time.perf_counter() - t0


def test_slice_batches_at_least_10x_torchvision(tmp_path: Path, one_thread: None) -> None:
    import gzip

    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from cnnlab.data.datasets import sample_dir

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in sample_dir().iterdir():
        (raw / f.name.removesuffix(".gz")).write_bytes(gzip.decompress(f.read_bytes()))
    tv = datasets.FashionMNIST(str(tmp_path), train=True, transform=transforms.ToTensor(), download=False)
    base = DataLoader(tv, batch_size=64, shuffle=True, num_workers=0)
    ours = SliceBatches(load_data("sample").train, batch_size=64, shuffle=True)
    norm = Normalize((0.0,), (1.0,))
    ratios = []
    for _ in range(3):
        ratios.append(_time(base, 40, None) / _time(ours, 40, norm))
    ratios.sort()
    assert ratios[1] >= 10.0, f"median speed-up {ratios[1]:.1f}x (all: {ratios})"
