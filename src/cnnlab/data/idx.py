"""IDX files (MNIST, Fashion-MNIST): parsing and finding them on disk.

The format is a 4-byte magic (0, 0, dtype code, number of dimensions), one big-endian uint32 per
dimension, then the data. Files may be gzip-compressed (``.gz``) or raw.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import DataError

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
DIGIT_CLASSES = [str(d) for d in range(10)]

#: The four standard file stems of MNIST-style data (train and t10k = test).
STANDARD_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
#: A single unsplit set (the shared mnist-10k folder).
SINGLE_STEMS = {"images": "images-idx3-ubyte", "labels": "labels-idx1-ubyte"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a numpy array of its declared shape and type.

    Raises:
        DataError: naming the file when it is unreadable, not IDX, or shorter than its header says.
    """
    p = Path(path)
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rb") as fh:
                data = fh.read()
        else:
            data = p.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"{p}: cannot read IDX file ({exc}); re-download it") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{p}: not an IDX file (bad magic number); point `data_dir` at the original files")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header < expected:
        raise DataError(f"{p}: truncated IDX file ({len(data) - header} of {expected} bytes); re-download it")
    arr = np.frombuffer(bytearray(data), dtype=dtype, count=int(np.prod(shape)), offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def find_idx_set(folders: Iterable[Path], stems: dict[str, str]) -> dict[str, Path] | None:
    """The first folder holding every file in ``stems`` (``.gz`` or raw), as key -> path."""
    for folder in folders:
        found = {key: _find_file(folder, stem) for key, stem in stems.items()}
        if all(found.values()):
            return {k: v for k, v in found.items() if v is not None}
    return None


def candidate_folders(name: str, tv_name: str, *, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Folders to look in for a dataset, most specific first.

    For each root (``data_dir``, then ``$CNNLAB_DATA_DIR``): the root itself, ``root/<name>``,
    ``root/<name>-10k`` (MNIST's small set) and torchvision's ``root/<TvName>/raw`` layout.
    """
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get("CNNLAB_DATA_DIR")
    if env:
        roots.append(Path(env).expanduser())
    out: list[Path] = []
    for root in roots:
        for folder in (root, root / name, root / f"{name}-10k", root / tv_name / "raw"):
            if folder not in out:
                out.append(folder)
    return out
