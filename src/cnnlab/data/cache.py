"""Decode-once cache: image files -> one uint8 array [N, C, H, W] on disk, memory-mapped back.

The cache key is a hash of the file list (absolute paths, sizes, mtimes), the target size and mode, so
a changed, added or removed file gives a new key and a fresh decode; epochs and runs after the first
decode no JPEG at all. Decoding runs in a thread pool (PIL releases the GIL while decoding) and JPEGs
are decoded at reduced scale with ``draft`` when the target is much smaller than the photo. A new
entry is decoded straight into its file, row after row, so memory stays flat however large the folder.
The cache is bounded (``CNNLAB_CACHE_MAX_GB``, default 10 GB): after a new entry is written, the least
recently used ones are deleted until it fits; data whose decoded size alone exceeds the bound is never
cached (:func:`cnnlab.data.load_data` streams it instead, :mod:`cnnlab.data.stream`).

The cache never fails a load: a damaged entry (unreadable, truncated, garbage, or not matching its
files) is dropped with a warning and decoded again; a full disk or an unwritable cache folder gives
one warning and the data is used from memory. Temporary files of killed writers are removed first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import struct
import warnings
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .._io import atomic_path, is_disk_full, remove_orphan_temps, write_json
from ..errors import DataError
from ..images import ImageMode, PixelBudget, decode_image, max_image_pixels, skip_reason
from .core import SkippedFile

#: Bump when the decoded pixels would change for the same files (resize method, conversion rules).
CACHE_VERSION = 1

#: ``progress(done, total)`` is called as files are decoded (the CLI drives a rich bar with it).
ProgressFn = Callable[[int, int], None]


#: Default bound on the decode cache; ``CNNLAB_CACHE_MAX_GB`` overrides it (0 = unbounded).
DEFAULT_MAX_GB = 10.0


def max_cache_bytes() -> int | None:
    """The decode cache's size bound in bytes (``CNNLAB_CACHE_MAX_GB``, default 10), None when unbounded."""
    from ..values import env_number

    gb = env_number("CNNLAB_CACHE_MAX_GB", default=DEFAULT_MAX_GB, unit="gigabytes", zero="unbounded",
                    error=DataError)
    return None if gb == 0 else int(gb * 1e9)


def prune_cache(
    folder: str | os.PathLike[str], max_bytes: int | None, *, keep: str | Collection[str] = ()
) -> list[str]:
    """Delete the least recently used decode-cache entries of ``folder`` until it holds ``max_bytes``.

    An entry is its ``.npy`` + ``.json`` pair; its last use is the ``.json``'s mtime (touched on every
    hit). The entries ``keep`` (a key or keys) are never deleted. Returns the deleted keys, oldest first.
    """
    kept = {keep} if isinstance(keep, str) else set(keep)
    if max_bytes is None:
        return []
    entries = []
    for meta in Path(folder).glob("decoded-*.json"):
        key = meta.stem.removeprefix("decoded-")
        npy = meta.with_suffix(".npy")
        try:
            entries.append((meta.stat().st_mtime, key, meta, npy, npy.stat().st_size + meta.stat().st_size))
        except OSError:  # half an entry (the other file is gone): it is never a hit, so it goes
            entries.append((0.0, key, meta, npy, 0))
    total = sum(e[4] for e in entries)
    deleted = []
    for _, key, meta, npy, nbytes in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        if key in kept:
            continue
        _drop_entry(npy, meta)
        total -= nbytes
        deleted.append(key)
    return deleted


def default_cache_dir() -> Path:
    """``$CNNLAB_CACHE_DIR``, else ``~/.cache/cnnlab``."""
    env = os.environ.get("CNNLAB_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cnnlab"


def cache_key(paths: Sequence[Path], *, size: tuple[int, int], mode: ImageMode) -> str:
    """Hash of the file list (path, size, mtime) + target size + mode + cache version."""
    h = hashlib.sha256(json.dumps([CACHE_VERSION, mode, list(size)]).encode())
    for p in paths:
        try:
            st = p.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"\0{p.resolve()}\0{stamp}".encode())
    return h.hexdigest()[:32]


def decoded_nbytes(n_files: int, *, size: tuple[int, int], mode: ImageMode) -> int:
    """Bytes ``n_files`` images take decoded at ``size`` in ``mode`` (what a cache entry holds)."""
    return n_files * (3 if mode == "RGB" else 1) * size[0] * size[1]


#: ``(file index, uint8 [C, H, W] or None, skip reason or None)``
Decoded = tuple[int, np.ndarray | None, str | None]


def iter_decoded(
    paths: Sequence[Path], *, size: tuple[int, int], mode: ImageMode, progress: ProgressFn | None = None,
    workers: int | None = None,
) -> Iterator[Decoded]:
    """Decode ``paths`` in a thread pool, yielding :data:`Decoded` tuples in file order.

    At most four images per thread are in flight, so memory stays flat however many files there are.
    """
    budget = PixelBudget(max_image_pixels())  # one for all threads: big images decode one at a time

    def work(i: int) -> Decoded:
        try:
            arr = np.asarray(decode_image(paths[i], mode=mode, size=size, budget=budget), dtype=np.uint8)
        except DataError as exc:
            return i, None, skip_reason(exc)
        return i, np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)), None

    n_workers = workers or min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        pending: deque[Future[Decoded]] = deque()
        submitted = 0
        for done in range(1, len(paths) + 1):
            while submitted < len(paths) and len(pending) < 4 * n_workers:
                pending.append(pool.submit(work, submitted))
                submitted += 1
            yield pending.popleft().result()
            if progress is not None:
                progress(done, len(paths))


def _skipped(paths: Sequence[Path], errors: dict[int, str]) -> list[SkippedFile]:
    return [SkippedFile(str(paths[i]), errors[i]) for i in sorted(errors)]


def _decode_all(
    paths: Sequence[Path], *, size: tuple[int, int], mode: ImageMode, progress: ProgressFn | None,
    workers: int | None,
) -> tuple[np.ndarray, list[int], list[SkippedFile]]:
    """Decode into memory (``use_cache=False``, or a cache that cannot be written)."""
    out = np.zeros((len(paths), 3 if mode == "RGB" else 1, *size), np.uint8)
    errors: dict[int, str] = {}
    for i, arr, reason in iter_decoded(paths, size=size, mode=mode, progress=progress, workers=workers):
        if arr is None:
            errors[i] = str(reason)
        else:
            out[i] = arr
    ok = [i for i in range(len(paths)) if i not in errors]
    return (out if len(ok) == len(paths) else out[ok]), ok, _skipped(paths, errors)


def check_files(
    paths: Sequence[Path], *, size: tuple[int, int], mode: ImageMode = "RGB",
    progress: ProgressFn | None = None, workers: int | None = None,
) -> tuple[list[int], list[SkippedFile]]:
    """Decode every file once and keep nothing: which ones decode (indices) and why the others do not.

    What a streamed dataset (decoded again batch by batch) checks first, so that it holds exactly the
    files a cached one would.
    """
    errors = {i: str(reason) for i, arr, reason in
              iter_decoded(paths, size=size, mode=mode, progress=progress, workers=workers) if arr is None}
    return [i for i in range(len(paths)) if i not in errors], _skipped(paths, errors)


def _npy_header(shape: tuple[int, ...], length: int | None = None) -> bytes:
    """A ``.npy`` (version 1.0) header for a C-order uint8 array, padded to ``length`` bytes (default: the
    next multiple of 64, as numpy writes it); the same length lets a header be rewritten in place."""
    text = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape!r}, }}"
    total = length or -(-(10 + len(text) + 1) // 64) * 64
    if 10 + len(text) + 1 > total:
        raise ValueError(f"npy header for {shape} does not fit in {total} bytes")
    body = (text.ljust(total - 11) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


def _decode_to_file(
    paths: Sequence[Path], dest: Path, *, size: tuple[int, int], mode: ImageMode, progress: ProgressFn | None,
    workers: int | None,
) -> tuple[list[int], list[SkippedFile]]:
    """Decode straight into the ``.npy`` file ``dest``, row after row (never the whole array in memory)."""
    tail = (3 if mode == "RGB" else 1, *size)
    header = _npy_header((len(paths), *tail))
    errors: dict[int, str] = {}
    with open(dest, "wb") as fh:
        fh.write(header)
        for i, arr, reason in iter_decoded(paths, size=size, mode=mode, progress=progress, workers=workers):
            if arr is None:
                errors[i] = str(reason)
            else:
                fh.write(arr.data)
        if errors:  # the skipped files left no row: the header says how many there are
            n_ok = len(paths) - len(errors)
            fh.seek(0)
            fh.write(_npy_header((n_ok, *tail), len(header)))
            fh.truncate(len(header) + n_ok * math.prod(tail))
    return [i for i in range(len(paths)) if i not in errors], _skipped(paths, errors)


def decode_files(
    paths: Sequence[Path],
    *,
    size: tuple[int, int],
    mode: ImageMode = "RGB",
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    keep: Collection[str] = (),
) -> tuple[np.ndarray, list[int], list[SkippedFile]]:
    """Decode and resize image files once, through the on-disk cache.

    A new entry is decoded straight into its file (memory stays flat however large the folder); after
    it is written, least recently used entries are deleted until the cache fits its bound.

    Args:
        paths: Image files, in dataset order.
        size: (height, width) every image is resized to.
        mode: "RGB" or "L".
        cache_dir: Cache folder (default :func:`default_cache_dir`).
        use_cache: False decodes in memory and writes nothing.
        progress: Called with (done, total) while decoding (not called on a cache hit).
        workers: Decoding threads (default: CPU count + 2, at most 8).
        keep: Keys (:func:`cache_key`) of other entries pruning must not delete (the other split of
            the same data).

    Returns:
        (uint8 array [N_ok, C, H, W] (memory-mapped from the cache file), indices into ``paths`` of the
        decoded files, the skipped files with reasons).
    """
    if not use_cache:
        return _decode_all(paths, size=size, mode=mode, progress=progress, workers=workers)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    remove_orphan_temps(folder, recursive=False)  # what a killed decode left behind
    key = cache_key(paths, size=size, mode=mode)
    npy, meta_path = folder / f"decoded-{key}.npy", folder / f"decoded-{key}.json"
    if meta_path.is_file():
        try:
            return _read_entry(npy, meta_path, n_files=len(paths), size=size, mode=mode)
        except _DamagedEntry as exc:
            warnings.warn(f"decode cache entry {meta_path} is damaged ({exc}); decoding the files again",
                          stacklevel=2)
            _drop_entry(npy, meta_path)
    try:
        ok, skipped = _write_entry(npy, meta_path, paths, size=size, mode=mode, progress=progress,
                                   workers=workers)
        prune_cache(folder, max_cache_bytes(), keep={key, *keep})
    except OSError as exc:
        why = "the disk is full" if is_disk_full(exc) else f"cannot write there: {exc.strerror or exc}"
        warnings.warn(
            f"decode cache {folder}: {why}; continuing without the cache "
            "(free space, or set CNNLAB_CACHE_DIR to another folder)",
            stacklevel=2,
        )
        from ..memory import check_memory

        check_memory(  # from here on the pixels are held in RAM, not in the memory-mapped entry
            decoded_nbytes(len(paths), size=size, mode=mode),
            f"decoding {len(paths):,} images at {mode} {size[0]}x{size[1]} in memory",
            "free space for the decode cache, use a smaller `img_size`, or fewer images with `limit`",
        )
        return _decode_all(paths, size=size, mode=mode, progress=progress, workers=workers)
    return np.load(npy, mmap_mode="c"), ok, skipped


class _DamagedEntry(Exception):
    """A cache entry that cannot be used as it is; the message says why."""


def _read_entry(
    npy: Path, meta_path: Path, *, n_files: int, size: tuple[int, int], mode: ImageMode
) -> tuple[np.ndarray, list[int], list[SkippedFile]]:
    """Read and check one cache entry (the last-use time is touched).

    Raises:
        _DamagedEntry: unreadable, truncated or garbage files, or metadata that does not fit the files.
    """
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        arr = np.load(npy, mmap_mode="c", allow_pickle=False)  # copy-on-write: never changes the file
    except (OSError, ValueError, EOFError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _DamagedEntry(" ".join(f"{type(exc).__name__}: {exc}".split())) from None
    problem = _metadata_problem(meta, n_files)
    if problem is not None:
        raise _DamagedEntry(problem)
    ok, skipped = meta["ok"], meta["skipped"]
    shape = (len(ok), 3 if mode == "RGB" else 1, *size)
    if arr.dtype != np.uint8 or arr.shape != shape:
        raise _DamagedEntry(f"array is {arr.dtype} {list(arr.shape)}, expected uint8 {list(shape)}")
    with contextlib.suppress(OSError):  # a read-only cache still serves hits
        os.utime(meta_path)  # last use, for the least-recently-used pruning
    return arr, ok, [SkippedFile(p, r) for p, r in skipped]


def _metadata_problem(meta: object, n_files: int) -> str | None:
    """What is wrong with an entry's metadata for ``n_files`` files, or None."""
    if not isinstance(meta, dict):
        return "metadata is not a JSON object"
    ok, skipped = meta.get("ok"), meta.get("skipped")
    if not isinstance(ok, list) or not all(type(i) is int for i in ok):
        return "metadata 'ok' is not a list of file indices"
    if not isinstance(skipped, list) or not all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(x, str) for x in s) for s in skipped
    ):
        return "metadata 'skipped' is not a list of [path, reason]"
    in_range = not ok or (ok[0] >= 0 and ok[-1] < n_files)
    if sorted(set(ok)) != ok or not in_range or len(ok) + len(skipped) != n_files:
        return f"metadata lists {len(ok)} decoded and {len(skipped)} skipped of {n_files} files"
    return None


def _write_entry(
    npy: Path, meta_path: Path, paths: Sequence[Path], *, size: tuple[int, int], mode: ImageMode,
    progress: ProgressFn | None, workers: int | None,
) -> tuple[list[int], list[SkippedFile]]:
    """Decode ``paths`` into a new entry, the array first: an entry only counts once its metadata exists."""
    try:
        with atomic_path(npy) as tmp:
            ok, skipped = _decode_to_file(paths, tmp, size=size, mode=mode, progress=progress,
                                          workers=workers)
        write_json(meta_path, {"ok": ok, "skipped": [[s.path, s.reason] for s in skipped],
                               "size": list(size), "mode": mode, "version": CACHE_VERSION})
    except OSError:
        with contextlib.suppress(OSError):
            npy.unlink(missing_ok=True)  # a lone array is never read, but it takes the space
        raise
    return ok, skipped


def _drop_entry(npy: Path, meta_path: Path) -> None:
    for path in (meta_path, npy):  # the metadata first: a lone .npy is never read as an entry
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
