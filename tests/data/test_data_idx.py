"""IDX datasets: fashion-mnist byte for byte, mnist split, the embedded sample, file discovery and errors."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnlab.data import load_data
from cnnlab.data.datasets import sample_dir
from cnnlab.data.idx import read_idx
from cnnlab.errors import DataError

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]  # fmt: skip


def _reference_idx(path: Path) -> np.ndarray:
    """Independent parse: gzip + struct header + numpy buffer."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype_code == 0x08
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def test_fashion_mnist_byte_for_byte(data_dir: Path) -> None:
    bundle = load_data("fashion-mnist", data_dir=data_dir)
    assert bundle.classes == FASHION
    assert bundle.image_shape == (1, 28, 28)
    folder = data_dir / "fashion-mnist"
    for split, prefix in ((bundle.train, "train"), (bundle.val, "t10k")):
        images = _reference_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        labels = _reference_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
        assert split.images.shape == (len(labels), 1, 28, 28)
        assert split.images.numpy().tobytes() == images.tobytes()
        assert split.labels.numpy().astype(np.uint8).tobytes() == labels.tobytes()
        assert split.paths is None


def test_cli_fashion_mnist_json(data_dir: Path, tmp_path: Path) -> None:
    from cnnlab.cli import app

    result = CliRunner().invoke(app, ["data", "fashion-mnist", "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc == {
        "classes": FASHION,
        "splits": {"train": 60000, "val": 10000},
        "image_shape": [1, 28, 28],
        "skipped": [],
    }
    assert (tmp_path / "samples.png").stat().st_size > 10_000


def test_mnist_10k_stratified_split(data_dir: Path) -> None:
    a = load_data("mnist", data_dir=data_dir)
    assert a.classes == [str(d) for d in range(10)]
    assert (len(a.train), len(a.val)) == (8000, 2000)
    total = np.bincount(_reference_idx(data_dir / "mnist-10k" / "labels-idx1-ubyte.gz"), minlength=10)
    assert np.abs(np.array(a.val.class_counts()) - total * 0.2).max() <= 0.5 + 1e-9
    b = load_data("mnist", data_dir=data_dir)
    assert (a.val.images.numpy() == b.val.images.numpy()).all()
    c = load_data("mnist", data_dir=data_dir, seed=1)
    assert not (a.val.images.numpy() == c.val.images.numpy()).all()


def test_sample_is_stratified_fashion_subset(data_dir: Path) -> None:
    files = sorted(sample_dir().iterdir())
    assert sum(f.stat().st_size for f in files) <= 3_000_000
    s = load_data("sample")
    assert (len(s.train), len(s.val)) == (3000, 1000)
    assert s.train.class_counts() == [300] * 10 and s.val.class_counts() == [100] * 10
    full = _reference_idx(data_dir / "fashion-mnist" / "train-images-idx3-ubyte.gz")
    known = {hashlib.md5(row.tobytes()).digest() for row in full}
    assert all(hashlib.md5(im.numpy().tobytes()).digest() in known for im in s.train.images[:200])


def test_raw_files_torchvision_layout_and_options(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in sample_dir().iterdir():
        (raw / f.name.removesuffix(".gz")).write_bytes(gzip.decompress(f.read_bytes()))
    got = load_data("fashion-mnist", data_dir=tmp_path)
    ref = load_data("sample")
    assert np.array_equal(got.train.images.numpy(), ref.train.images.numpy())
    small = load_data("fashion-mnist", data_dir=tmp_path, limit=50, img_size=32, grayscale=False)
    assert small.image_shape == (3, 32, 32) and len(small.train) == 50 and len(small.val) == 50
    assert small.train.class_counts() == [5] * 10
    assert np.array_equal(small.train.images[:, 0].numpy(), small.train.images[:, 2].numpy())


def test_standard_mnist_files_preferred_over_10k(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    shutil.copytree(sample_dir(), folder)
    bundle = load_data("mnist", data_dir=tmp_path)
    assert (len(bundle.train), len(bundle.val)) == (3000, 1000)


def test_not_found_names_where_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DataError) as info:
        load_data("fashion-mnist", data_dir=tmp_path)
    msg = str(info.value)
    assert "`data_dir`" in msg and "CNNLAB_DATA_DIR" in msg and str(tmp_path / "fashion-mnist") in msg
    assert "--data-dir DIR" in info.value.cli_message() and "\n" not in msg  # the CLI names its flag
    monkeypatch.delenv("CNNLAB_DATA_DIR")
    with pytest.raises(DataError, match="CNNLAB_DATA_DIR is not set and no `data_dir` given"):
        load_data("mnist")


def test_read_idx_errors(tmp_path: Path) -> None:
    bad = tmp_path / "x-idx1-ubyte"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(bad)
    short = tmp_path / "y-idx1-ubyte"
    short.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 4)
    with pytest.raises(DataError, match="truncated"):
        read_idx(short)
