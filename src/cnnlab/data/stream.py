"""Reading a split's pixels batch by batch without holding them in the process.

* :class:`FileRows` reads the rows of a batch from a decode-cache file with ``pread``: the pixels stay
  in the operating system's page cache (shared, reclaimable) and never become the process's own
  memory, so a training process's resident size does not grow with the folder. (Indexing the
  memory-mapped array instead maps every page it touches into the process: one epoch over 16,000
  images at 224 px would add 2.4 GB to its RSS.)
* :class:`StreamingImages` stands in for the uint8 ``[N, C, H, W]`` tensor of a folder whose decoded
  size exceeds the decode cache's bound (``CNNLAB_CACHE_MAX_GB``): each batch is decoded from its
  files when it is read, in a thread pool, with the same decoder and size as the cache.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..images import ImageMode


def _index_list(index: torch.Tensor | Sequence[int]) -> list[int]:
    return torch.as_tensor(index, dtype=torch.int64).reshape(-1).tolist()


class FileRows:
    """Rows of a memory-mapped ``.npy`` array (uint8 ``[N, ...]``), read with ``os.preadv``.

    Args:
        array: The array as ``np.load(path, mmap_mode=...)`` returns it.
    """

    def __init__(self, array: np.memmap) -> None:
        if array.filename is None:
            raise ValueError("FileRows needs an array memory-mapped from a file")
        self.path, self.offset = str(array.filename), int(array.offset)
        self.tail = tuple(int(d) for d in array.shape[1:])
        self.n = int(array.shape[0])
        self.row_bytes = int(np.prod(self.tail, dtype=np.int64))
        self._fd: int | None = None

    @staticmethod
    def available() -> bool:
        """Whether this platform has ``os.preadv`` (Linux, BSD, macOS 11+)."""
        return hasattr(os, "preadv")

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        return self._fd

    def read(self, index: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """uint8 ``[len(index), ...]``: the rows ``index``, in that order (one read per run of rows)."""
        rows = _index_list(index)
        out = torch.empty((len(rows), *self.tail), dtype=torch.uint8)
        buf = out.numpy().reshape(len(rows), self.row_bytes)
        fd, j = self._file(), 0
        while j < len(rows):
            k = j + 1
            while k < len(rows) and rows[k] == rows[k - 1] + 1:  # consecutive rows: one read
                k += 1
            if rows[j] < 0 or rows[k - 1] >= self.n:
                raise IndexError(f"rows {rows[j]}..{rows[k - 1]} out of range for {self.n}")
            want = (k - j) * self.row_bytes
            got = os.preadv(fd, [buf[j:k].data], self.offset + rows[j] * self.row_bytes)
            if got != want:
                raise DataError(f"decode cache file {self.path} is shorter than its header says; delete it "
                                "and load the data again")
            j = k
        return out

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fd": None}  # a process that unpickles it opens the file itself


class StreamingImages:
    """Image files decoded when they are read: a stand-in for a uint8 ``[N, C, H, W]`` tensor.

    Supports what the data layer and its consumers use: ``shape``, ``dtype``, ``ndim``, ``len()``,
    ``index_select(0, index)``, and indexing by an int, a slice, or a sequence/tensor of indices.

    Args:
        paths: The files, one per row (already checked to decode).
        size: (height, width) each is resized to.
        mode: "RGB" or "L".
        workers: Decoding threads (default: CPU count + 2, at most 8).
    """

    dtype = torch.uint8
    ndim = 4

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, size: tuple[int, int], mode: ImageMode,
                 workers: int | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.size, self.mode = (int(size[0]), int(size[1])), mode
        self.workers = workers or min(8, (os.cpu_count() or 1) + 2)
        self._pool: ThreadPoolExecutor | None = None

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.paths), 3 if self.mode == "RGB" else 1, *self.size))

    def __len__(self) -> int:
        return len(self.paths)

    def fingerprint(self) -> str:
        """A key of the files (paths, sizes, mtimes), the size and mode, as the decode cache keys them."""
        from .cache import cache_key

        return cache_key(self.paths, size=self.size, mode=self.mode)

    def _one(self, i: int) -> np.ndarray:
        from ..images import decode_image

        arr = np.asarray(decode_image(self.paths[i], mode=self.mode, size=self.size), dtype=np.uint8)
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)

    def read(self, index: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """Decode the files ``index``: uint8 ``[len(index), C, H, W]``.

        Raises:
            DataError: A file no longer decodes (changed or removed since the data was loaded).
        """
        rows = _index_list(index)
        out = torch.empty((len(rows), *self.shape[1:]), dtype=torch.uint8)
        if not rows:
            return out
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="cnnlab-decode")
        buf = out.numpy()
        for j, arr in enumerate(self._pool.map(self._one, [r if r >= 0 else r + len(self) for r in rows])):
            buf[j] = arr
        return out

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        if dim != 0:
            raise ValueError("StreamingImages.index_select works along dim 0 (the images) only")
        return self.read(index)

    def __getitem__(self, key: Any) -> torch.Tensor:
        if isinstance(key, (int, np.integer)):
            return self.read([int(key)])[0]
        if isinstance(key, slice):
            return self.read(range(len(self))[key])
        index = torch.as_tensor(key)
        if index.dtype == torch.bool:
            index = index.nonzero().reshape(-1)
        return self.read(index)

    def __repr__(self) -> str:
        return f"StreamingImages({len(self)} files, {'x'.join(map(str, self.shape[1:]))}, decoded when read)"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pool": None}
