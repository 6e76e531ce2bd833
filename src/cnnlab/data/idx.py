"""IDX files (MNIST, Fashion-MNIST): parsing and finding them on disk.

The format is a 4-byte magic (0, 0, dtype code, number of dimensions), one big-endian uint32 per
dimension, then the data. Files may be gzip-compressed (``.gz``) or raw.

Nothing read is trusted: :func:`read_idx` checks the magic, the number of dimensions a caller expects
and the length the header promises; :func:`read_idx_set` checks that an image file holds uint8 images,
that its label file holds one label per image, and that every label names one of the classes. Each
refusal is one line naming the file (a header of 9 dimensions, 9,000 labels for 10,000 images or a
label of 200 for 10 classes ended in a ValueError or IndexError, or trained silently on wrong labels).
"""

from __future__ import annotations

import gzip
import math
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


def read_idx(path: str | os.PathLike[str], *, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a numpy array of its declared shape and type.

    Args:
        path: The file.
        ndim: The number of dimensions the file must have (3 for images, 1 for labels); None: any.

    Raises:
        DataError: naming the file when it is unreadable, not IDX, of other dimensions than ``ndim``, or
            shorter than its header says.
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
    dims = data[3]
    if ndim is not None and dims != ndim:
        what = {1: "a label file", 3: "an image file"}.get(ndim, "this IDX file")
        raise DataError(f"{p}: the header says {dims} dimensions, {what} has {ndim}; re-download it")
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataError(f"{p}: truncated IDX header ({len(data)} of {header} bytes); re-download it")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=dims, offset=4))
    dtype = np.dtype(_DTYPES[data[2]])
    count = math.prod(shape)
    if len(data) - header < count * dtype.itemsize:
        raise DataError(f"{p}: truncated IDX file ({len(data) - header:,} of {count * dtype.itemsize:,} "
                        "bytes); re-download it")
    arr = np.frombuffer(bytearray(data), dtype=dtype, count=count, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read_idx_set(
    images: str | os.PathLike[str], labels: str | os.PathLike[str], classes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """An image file and its label file, checked against each other and against ``classes``.

    Args:
        images: The IDX image file: N x H x W uint8.
        labels: The IDX label file: N whole numbers, each in ``0..len(classes) - 1``.
        classes: The dataset's class names.

    Returns:
        ``(images [N, H, W] uint8, labels [N] int64)``.

    Raises:
        DataError: naming the file: other dimensions or types, a label count that is not the image
            count, a label that is no class.
    """
    x = read_idx(images, ndim=3)
    y = read_idx(labels, ndim=1)
    if x.dtype != np.uint8:
        raise DataError(f"{images}: holds {x.dtype} values, IDX images are uint8 (type code 0x08); "
                        "re-download it")
    if min(x.shape[1:]) < 1:
        raise DataError(f"{images}: images of {x.shape[1]}x{x.shape[2]} pixels; re-download it")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{labels}: holds {y.dtype} values, labels are whole numbers; re-download it")
    if len(y) != len(x):
        raise DataError(f"{labels}: {len(y):,} labels for the {len(x):,} images of {Path(images).name}; each "
                        "image needs one label: re-download both files")
    bad = np.flatnonzero((y < 0) | (y >= len(classes)))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{labels}: label {int(y[i])} (image {i:,}, and {len(bad) - 1:,} more) is outside "
                        f"0..{len(classes) - 1}, the {len(classes)} classes of this dataset; re-download it")
    return x, y.astype(np.int64)


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
