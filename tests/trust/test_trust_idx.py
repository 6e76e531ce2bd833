"""Damaged IDX files: one line naming the file, from ``data``, ``train`` and ``evaluate`` alike.

Issue 20: a header claiming 9 dimensions ended in ``ValueError ... [10000, 1, 28, 28, 0, 0, 256, ...]``,
9,000 labels for 10,000 images in a ValueError from ``data`` and ``evaluate`` while ``train`` went on, labels
out of range in an ``IndexError`` from ``evaluate``, and labels of 200 for 10 classes passed ``data`` and
``train --limit 200`` with exit 0. Each case copies the embedded sample (Fashion-MNIST IDX files) into a
``fashion-mnist/`` folder, damages one file and reads it as ``fashion-mnist``.
"""

from __future__ import annotations

import gzip
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _trust import invoke, refused

from cnnlab.data.datasets import sample_dir

IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


def _header(dims: tuple[int, ...], code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims)


def _nine_dimensions(raw: bytes) -> bytes:
    return _header((1000, 1, 28, 28, 0, 0, 256, 1, 1)) + raw[16:]


def _fewer_labels(raw: bytes) -> bytes:
    return _header((900,)) + raw[8 : 8 + 900]


def _label(value: int) -> Callable[[bytes], bytes]:
    def damage(raw: bytes) -> bytes:
        labels = bytearray(raw)
        labels[8 + 17] = value
        return bytes(labels)

    return damage


def _float_images(raw: bytes) -> bytes:
    return _header((1000, 28, 28), code=0x0D) + np.zeros((1000, 28, 28), ">f4").tobytes()


def _short_header(raw: bytes) -> bytes:
    return bytes([0, 0, 8, 200]) + b"\x00" * 12


CASES = [
    (IMAGES, _nine_dimensions, "the header says 9 dimensions, an image file has 3"),
    (LABELS, _fewer_labels, "900 labels for the 1,000 images of t10k-images-idx3-ubyte.gz"),
    (LABELS, _label(200), "label 200 (image 17, and 0 more) is outside 0..9, the 10 classes"),
    (LABELS, _label(10), "label 10 (image 17, and 0 more) is outside 0..9"),
    (IMAGES, _float_images, "holds float32 values, IDX images are uint8"),
    (IMAGES, _short_header, "the header says 200 dimensions"),
]


def _damaged(root: Path, name: str, damage: Callable[[bytes], bytes]) -> Path:
    folder = root / "fashion-mnist"
    shutil.copytree(sample_dir(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / name
    path.write_bytes(gzip.compress(damage(gzip.decompress(path.read_bytes()))))
    return root


@pytest.mark.parametrize(("name", "damage", "says"), CASES, ids=[c[2][:30] for c in CASES])
def test_a_damaged_idx_file_is_named_by_data_train_and_evaluate(
    name: str, damage: Callable[[bytes], bytes], says: str, tiny_run: Path, tmp_path: Path
) -> None:
    root = _damaged(tmp_path, name, damage)
    env = {"CNNLAB_DATA_DIR": str(root)}
    path = root / "fashion-mnist" / name
    runs = {
        "data": ["data", "fashion-mnist", "--out", str(tmp_path / "d")],
        "train": ["train", "--data", "fashion-mnist", "--limit", "200", "--epochs", "1", "--no-progress",
                  "--out", str(tmp_path / "t")],
        "evaluate": ["evaluate", str(tiny_run), "--data", "fashion-mnist", "--json"],
    }
    for command, args in runs.items():
        line = refused(invoke(*args, env=env))
        assert line.startswith(f"error: {path}: ") and says in line, (command, line)
    assert not (tmp_path / "t" / "config.yaml").exists()  # refused before the run folder was written


def test_the_library_names_the_label_file_and_the_count() -> None:
    from cnnlab.data.idx import DIGIT_CLASSES, read_idx_set
    from cnnlab.errors import DataError

    folder = sample_dir()
    x, y = read_idx_set(folder / IMAGES, folder / LABELS, DIGIT_CLASSES)
    assert x.shape == (1000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64 and y.max() == 9
    with pytest.raises(DataError, match=r"label 9 .* outside 0\.\.1, the 2 classes"):
        read_idx_set(folder / IMAGES, folder / LABELS, ["a", "b"])
    with pytest.raises(DataError, match="the header says 1 dimensions, an image file has 3"):
        read_idx_set(folder / LABELS, folder / LABELS, DIGIT_CLASSES)
