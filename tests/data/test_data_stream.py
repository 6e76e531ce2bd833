"""Big folders: batches read from the cache file with pread (pixels stay out of the process), new
entries decoded straight into their file, and a folder over the cache bound streamed, not cached."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.data import load_data
from cnnlab.data.cache import decode_files
from cnnlab.data.datamodule import SliceBatches
from cnnlab.data.stream import FileRows, StreamingImages

SRC = str(Path(cnnlab.__file__).parents[1])


def _folder(root: Path, n_per_class: int, side: int = 40, broken: bool = False) -> Path:
    """Two classes of seeded noise PNGs (each image distinct); ``broken`` adds three undecodable files."""
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            pixels = rng.integers(0, 256, (side, side + 4, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    if broken:
        good = (root / "a" / "0.png").read_bytes()
        (root / "a" / "cut.png").write_bytes(good[: len(good) // 2])
        (root / "b" / "empty.png").write_bytes(b"")
        (root / "b" / "text.jpg").write_text("not a photo")
    return root


def _cache_bytes(cache: Path) -> int:
    return sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) if cache.exists() else 0


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_file_rows_read_what_the_array_holds(tmp_path: Path, cache: Path) -> None:
    folder = _folder(tmp_path / "d", 30, side=12)
    arr, ok, _ = decode_files(sorted(folder.rglob("*.png")), size=(10, 14))
    assert isinstance(arr, np.memmap) and len(ok) == 60
    rows = FileRows(arr)
    for index in ([0], [59], list(range(60)), [5, 6, 7, 30, 2, 2, 59, 0], list(range(40, 10, -3)), []):
        got = rows.read(torch.tensor(index, dtype=torch.int64))
        assert got.dtype == torch.uint8 and got.shape == (len(index), 3, 10, 14)
        assert torch.equal(got, torch.from_numpy(np.asarray(arr)[index]))
    with pytest.raises(IndexError):
        rows.read(torch.tensor([60]))


def test_a_cached_split_reads_its_batches_from_the_file(tmp_path: Path, cache: Path) -> None:
    folder = _folder(tmp_path / "d", 20, broken=True)
    bundle = load_data(str(folder), img_size=24)
    reference = load_data(str(folder), img_size=24, use_cache=False)
    assert isinstance(bundle.train.reader, FileRows) and reference.train.reader is None
    assert [s.path for s in bundle.skipped] == [s.path for s in reference.skipped]
    assert len(bundle.skipped) == 3
    for split in ("train", "val"):
        ds, ref = getattr(bundle, split), getattr(reference, split)
        idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(1))
        assert torch.equal(ds.get_batch(idx)[0], ref.get_batch(idx)[0])
        assert torch.equal(ds.get_batch(idx)[1], ref.get_batch(idx)[1])
        assert torch.equal(ds.images, ref.images)


_MAPPED_RSS = r"""
import json, sys, torch
from cnnlab.data import load_data
from cnnlab.data.datamodule import SliceBatches

def mapped_kb(name):  # resident kB of this process's mappings of the cache file
    kb, inside = 0, False
    for line in open("/proc/self/smaps"):
        if line[:1] in "0123456789abcdef" and "-" in line.split()[0]:
            inside = line.rstrip().endswith(".npy") and "decoded-" in line
        elif inside and line.startswith("Rss:"):
            kb += int(line.split()[1])
    return kb

bundle = load_data(sys.argv[1], img_size=96)
n = 0
for images, labels in SliceBatches(bundle.train, batch_size=16, shuffle=True):
    n += len(images)
print(json.dumps({"seen": n, "mapped_kb": mapped_kb("decoded-"), "bytes": bundle.train.images.numel()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_an_epoch_leaves_the_pixels_out_of_the_process(tmp_path: Path, cache: Path) -> None:
    folder = _folder(tmp_path / "d", 150)
    env = {**os.environ, "PYTHONPATH": SRC, "CNNLAB_CACHE_DIR": str(cache)}
    for attempt in ("cold", "warm"):  # the decoding run, then a cache hit
        done = subprocess.run([sys.executable, "-c", _MAPPED_RSS, str(folder)], capture_output=True,
                              text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["seen"] == 240 and result["bytes"] == 240 * 3 * 96 * 96  # 6.6 MB of pixels
        # Indexing the memory-mapped array maps every page it reads (6,636 kB here); pread maps none.
        assert result["mapped_kb"] < 64, (attempt, result)


def test_over_the_cache_bound_the_folder_is_streamed_with_one_notice(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _folder(tmp_path / "d", 12, broken=True)  # 24 good images at 48 px: 166 kB decoded
    reference = load_data(str(folder), img_size=48)
    cached_entries = sorted(p.name for p in cache.iterdir())
    monkeypatch.setenv("CNNLAB_CACHE_MAX_GB", "0.0001")  # 100 kB
    with caplog.at_level(logging.WARNING, logger="cnnlab.data"):
        bundle = load_data(str(folder), img_size=48)
    notes = [r.getMessage() for r in caplog.records if r.name == "cnnlab.data"]
    assert len(notes) == 1 and "\n" not in notes[0], notes
    assert "take 0.2 MB, over the decode cache bound of 0.1 MB (CNNLAB_CACHE_MAX_GB)" in notes[0]
    assert "decoding every batch from the files" in notes[0]
    assert isinstance(bundle.train.images, StreamingImages)
    assert sorted(p.name for p in cache.iterdir()) == cached_entries  # nothing written, nothing evicted
    assert [s.path for s in bundle.skipped] == [s.path for s in reference.skipped]  # the same 3 files
    assert [s.reason for s in bundle.skipped] == [s.reason for s in reference.skipped]
    assert bundle.image_shape == reference.image_shape and bundle.classes == reference.classes
    for split in ("train", "val"):
        ds, ref = getattr(bundle, split), getattr(reference, split)
        assert len(ds) == len(ref) and ds.paths == ref.paths
        assert torch.equal(ds.labels, ref.labels)
        batches = [images for images, _ in SliceBatches(ds, batch_size=5, shuffle=False)]
        assert torch.equal(torch.cat(batches), ref.images)  # decoded per batch, the same pixels
        assert torch.equal(ds.images[2], ref.images[2]) and torch.equal(ds.images[1:4], ref.images[1:4])
        assert torch.equal(ds.images[torch.tensor([3, 0])], ref.images[torch.tensor([3, 0])])


def test_both_splits_are_counted_and_neither_evicts_the_other(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path / "d", 20)  # 40 images at 32 px: 32 train + 8 val, 98 kB + 25 kB decoded
    monkeypatch.setenv("CNNLAB_CACHE_MAX_GB", "0.0001")  # each split fits alone; both together do not
    assert isinstance(load_data(str(folder), img_size=32).train.images, StreamingImages)
    assert not cache.exists() or not list(cache.glob("decoded-*"))
    monkeypatch.setenv("CNNLAB_CACHE_MAX_GB", "0.000125")  # 125 kB: both fit, with their metadata
    first = load_data(str(folder), img_size=32)
    assert isinstance(first.train.reader, FileRows) and isinstance(first.val.reader, FileRows)
    assert len(list(cache.glob("decoded-*.npy"))) == 2 and _cache_bytes(cache) <= 125_000
    other = _folder(tmp_path / "e", 4)  # a new entry: the old ones go, least recently used first
    load_data(str(other), img_size=32)
    assert _cache_bytes(cache) <= 125_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resets the peak with /proc/self/clear_refs")
def test_a_cold_decode_keeps_memory_flat(tmp_path: Path, cache: Path) -> None:
    # 600 noise images of 3 x 128 x 132: 30 MB decoded. Written row by row into the cache file, the
    # peak grows by a few images, not by the array (which `use_cache=False` holds in memory).
    folder = _folder(tmp_path / "d", 300, side=128)
    script = (
        "import json, sys; from pathlib import Path; from cnnlab.data.cache import decode_files\n"
        "def hwm():\n"
        "    return int(next(x for x in open('/proc/self/status') if x.startswith('VmHWM')).split()[1])\n"
        "paths = sorted(Path(sys.argv[1]).rglob('*.png'))\n"
        "open('/proc/self/clear_refs', 'w').write('5'); before = hwm()  # peak := current\n"
        "arr, ok, _ = decode_files(paths, size=(128, 132), use_cache=sys.argv[2] == '1')\n"
        "print(json.dumps({'grew_mb': (hwm() - before) / 1024, 'n': len(ok)}))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC, "CNNLAB_CACHE_DIR": str(cache)}
    grew = {}
    for use_cache in ("0", "1"):
        done = subprocess.run([sys.executable, "-c", script, str(folder), use_cache], capture_output=True,
                              text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["n"] == 600
        grew[use_cache] = result["grew_mb"]
    assert grew["0"] > 28, grew  # the in-memory array: the measurement sees it
    assert grew["1"] < 12, grew


def test_training_on_a_folder_over_the_bound_completes_with_the_notice(tmp_path: Path, cache: Path) -> None:
    folder = _folder(tmp_path / "d", 12, broken=True)
    out = tmp_path / "run"
    args = [sys.executable, "-m", "cnnlab", "train", "--data", str(folder), "--model",
            "conv:8:3:stride=2 relu", "--img-size", "48", "--epochs", "2", "--batch-size", "8",
            "--no-progress", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": SRC, "CNNLAB_CACHE_DIR": str(cache), "CNNLAB_CACHE_MAX_GB": "0.0001",
           "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    notes = [line for line in done.stderr.splitlines() if "over the decode cache bound" in line]
    assert len(notes) == 1 and notes[0].startswith("note: "), done.stderr
    assert "CNNLAB_CACHE_MAX_GB" in notes[0]
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + 2 epochs
    assert (out / "model.safetensors").is_file()
    assert _cache_bytes(cache) <= 100_000  # the bound held: the folder was never cached
