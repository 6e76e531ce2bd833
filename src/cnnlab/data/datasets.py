"""``load_data(SPEC)``: every dataset cnnlab reads, as one :class:`DataBundle`.

SPEC is a registered name (``sample``, ``mnist``, ``fashion-mnist``), a folder of images, or a CSV of
``path,label`` rows. Image sizes: IDX data keeps its native 28x28 unless ``img_size`` is given;
folders and CSV lists are resized to ``img_size`` x ``img_size`` (default 150, the classic
cats-vs-dogs size), aspect ratio not kept. Folders decode to RGB unless ``grayscale=True``; IDX data
is 1-channel unless ``grayscale=False`` (then copied to 3 channels, for ImageNet-style models).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataArgumentError, DataError, did_you_mean
from ..images import ImageMode
from ..values import check_seed
from .cache import ProgressFn, cache_key, check_files, decode_files, decoded_nbytes, max_cache_bytes
from .core import DataBundle, ImageTensorDataset, SkippedFile, stratified_split, stratified_take
from .folders import FileList, read_csv_list, scan_folder
from .idx import (
    DIGIT_CLASSES,
    FASHION_CLASSES,
    SINGLE_STEMS,
    STANDARD_STEMS,
    candidate_folders,
    find_idx_set,
    read_idx_set,
)
from .stream import FileRows, StreamingImages

#: Side length folders and CSV lists are resized to when ``img_size`` is not given.
DEFAULT_FOLDER_SIZE = 150

#: One-line notices of the data layer (a folder streamed because it is over the cache bound); with no
#: logging configured Python prints them on stderr as they are.
log = logging.getLogger("cnnlab.data")


@dataclass(frozen=True)
class LoadOptions:
    """The keyword options of :func:`load_data`, passed to every loader."""

    data_dir: str | os.PathLike[str] | None = None
    img_size: int | None = None
    val_split: float = 0.2
    seed: int = 0
    limit: int | None = None
    cache_dir: str | os.PathLike[str] | None = None
    grayscale: bool | None = None
    progress: ProgressFn | None = None
    download: bool = False
    use_cache: bool = True


Loader = Callable[[LoadOptions], DataBundle]
DATASETS: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Register a named dataset SPEC; a duplicate name raises ValueError."""

    def deco(fn: Loader) -> Loader:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        DATASETS[name] = fn
        return fn

    return deco


def list_datasets() -> list[str]:
    """Names usable as SPEC (besides folders and CSV files)."""
    return list(DATASETS)


# ---------------------------------------------------------------- IDX (MNIST-style) data


def _check_decoded_memory(n: int, channels: int, side: int, *, resized_in_chunks: int = 0) -> None:
    """Refuse to hold ``n`` images of ``channels`` x ``side`` x ``side`` over the memory budget.

    ``resized_in_chunks``: images resized at a time in float32 (input and output), on top of the uint8s.
    """
    from ..memory import check_memory

    floats = 2 * 4 * min(n, resized_in_chunks) * channels * side * side
    check_memory(n * channels * side * side + floats, f"{n:,} images at {channels}x{side}x{side}",
                 "use a smaller `img_size`, or fewer images with `limit`")


def _idx_split(x: np.ndarray, y: np.ndarray, opts: LoadOptions, classes: list[str]) -> ImageTensorDataset:
    if opts.limit is not None:
        keep = stratified_take(y, opts.limit)
        x, y = x[keep], y[keep]
    images = torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1)  # [N, 1, H, W]
    if opts.img_size is not None and opts.img_size != images.shape[-1]:
        _check_decoded_memory(len(images), 3 if opts.grayscale is False else 1, opts.img_size,
                              resized_in_chunks=4096)
        import torch.nn.functional as F

        chunks = [
            F.interpolate(c.float(), size=(opts.img_size, opts.img_size), mode="bilinear", antialias=True,
                          align_corners=False).round_().clamp_(0, 255).to(torch.uint8)
            for c in images.split(4096)
        ]
        images = torch.cat(chunks)
    if opts.grayscale is False:
        images = images.expand(-1, 3, -1, -1).contiguous()
    return ImageTensorDataset(images, torch.from_numpy(y.astype(np.int64)), classes)


def _idx_bundle(spec: str, classes: list[str], train: tuple[np.ndarray, np.ndarray],
                val: tuple[np.ndarray, np.ndarray], opts: LoadOptions) -> DataBundle:
    tr = _idx_split(*train, opts, classes)
    va = _idx_split(*val, opts, classes)
    return DataBundle(spec, list(classes), tr, va, tuple(tr.images.shape[1:]), [])  # type: ignore[arg-type]


def _not_found(name: str, folders: list[Path], stems: dict[str, str]) -> DataError:
    nowhere = "nowhere (CNNLAB_DATA_DIR is not set[ and no `data_dir` given])"
    where = ", ".join(str(f) for f in folders) or nowhere
    return DataError(
        f"{name} IDX files ({', '.join(s + '[.gz]' for s in stems.values())}) not found; looked in {where}; "
        f"set CNNLAB_DATA_DIR to the folder holding {name}/[ (or pass `data_dir` DIR)][, or add `download`]"
    )


def _download(tv_name: str, opts: LoadOptions) -> Path:
    """torchvision download, only on request; returns the raw folder holding the IDX files."""
    import torchvision.datasets as tvd

    from .cache import default_cache_dir

    root = (Path(opts.cache_dir) if opts.cache_dir else default_cache_dir()) / "torchvision"
    try:
        for train in (True, False):
            getattr(tvd, tv_name)(root=str(root), train=train, download=True)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError variants when offline
        raise DataError(
            f"downloading {tv_name} failed ({type(exc).__name__}: {exc}); "
            "copy the IDX files and pass `data_dir`"
        ) from None
    return root / tv_name / "raw"


Arrays = tuple[np.ndarray, np.ndarray]


def _load_standard(files: dict[str, Path], classes: list[str]) -> tuple[Arrays, Arrays]:
    return (
        read_idx_set(files["train_images"], files["train_labels"], classes),
        read_idx_set(files["test_images"], files["test_labels"], classes),
    )


@register_dataset("fashion-mnist")
def _fashion_mnist(opts: LoadOptions) -> DataBundle:
    folders = candidate_folders("fashion-mnist", "FashionMNIST", data_dir=opts.data_dir)
    files = find_idx_set(folders, STANDARD_STEMS)
    if files is None and opts.download:
        files = find_idx_set([_download("FashionMNIST", opts)], STANDARD_STEMS)
    if files is None:
        raise _not_found("fashion-mnist", folders, STANDARD_STEMS)
    train, val = _load_standard(files, FASHION_CLASSES)
    return _idx_bundle("fashion-mnist", FASHION_CLASSES, train, val, opts)


@register_dataset("mnist")
def _mnist(opts: LoadOptions) -> DataBundle:
    """Standard MNIST train/t10k files when present, else the 10k set split by ``val_split``."""
    folders = candidate_folders("mnist", "MNIST", data_dir=opts.data_dir)
    files = find_idx_set(folders, STANDARD_STEMS)
    if files is not None:
        train, val = _load_standard(files, DIGIT_CLASSES)
        return _idx_bundle("mnist", DIGIT_CLASSES, train, val, opts)
    single = find_idx_set(folders, SINGLE_STEMS)
    if single is None and opts.download:
        files = find_idx_set([_download("MNIST", opts)], STANDARD_STEMS)
        if files is not None:
            return _idx_bundle("mnist", DIGIT_CLASSES, *_load_standard(files, DIGIT_CLASSES), opts)
    if single is None:
        raise _not_found("mnist", folders, STANDARD_STEMS)
    x, y = read_idx_set(single["images"], single["labels"], DIGIT_CLASSES)
    tr, va = stratified_split(y, opts.val_split, seed=opts.seed)
    return _idx_bundle("mnist", DIGIT_CLASSES, (x[tr], y[tr]), (x[va], y[va]), opts)


def sample_dir() -> Path:
    """The folder of the embedded Fashion-MNIST sample shipped inside the package."""
    return Path(__file__).resolve().parent / "_sample"


@register_dataset("sample")
def _sample(opts: LoadOptions) -> DataBundle:
    """A stratified Fashion-MNIST subset (3,000 train + 1,000 test) shipped with cnnlab: works offline."""
    files = find_idx_set([sample_dir()], STANDARD_STEMS)
    if files is None:
        raise DataError(f"the embedded sample is missing from {sample_dir()}; reinstall cnnlab")
    train, val = _load_standard(files, FASHION_CLASSES)
    return _idx_bundle("sample", FASHION_CLASSES, train, val, opts)


# ---------------------------------------------------------------- folders and CSV lists


def _decode_split(
    items: list[tuple[Path, int]], classes: list[str], opts: LoadOptions, *, done: int, total: int,
    stream: bool, keep: tuple[str, ...],
) -> tuple[ImageTensorDataset, list[SkippedFile]]:
    """One split's images: through the decode cache (read back with pread), or streamed from the files."""
    size = opts.img_size or DEFAULT_FOLDER_SIZE
    mode: ImageMode = "L" if opts.grayscale else "RGB"
    paths = [p for p, _ in items]
    labels = np.array([label for _, label in items], dtype=np.int64)
    progress = None
    if opts.progress is not None:
        outer = opts.progress
        progress = lambda i, _n: outer(done + i, total)  # noqa: E731
    reader = None
    images: Any
    if stream:
        ok, skipped = check_files(paths, size=(size, size), mode=mode, progress=progress)
        images = StreamingImages([paths[i] for i in ok], size=(size, size), mode=mode)
        reader = images
    else:
        arr, ok, skipped = decode_files(paths, size=(size, size), mode=mode, cache_dir=opts.cache_dir,
                                        use_cache=opts.use_cache, progress=progress, keep=keep)
        channels = 1 if mode == "L" else 3
        empty = torch.zeros((0, channels, size, size), dtype=torch.uint8)
        images = torch.from_numpy(arr) if len(ok) else empty
        if isinstance(arr, np.memmap) and len(ok) and FileRows.available():
            reader = FileRows(arr)
    ds = ImageTensorDataset(images, torch.from_numpy(labels[ok]), classes, [str(paths[i]) for i in ok],
                            reader=reader)
    return ds, skipped


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.1f} MB"


def _stream_instead(spec: str, n_files: int, opts: LoadOptions) -> bool:
    """Whether the decoded images are more than the decode cache may hold (then they are streamed)."""
    bound = max_cache_bytes() if opts.use_cache else None
    if bound is None:
        return False
    side = opts.img_size or DEFAULT_FOLDER_SIZE
    nbytes = decoded_nbytes(n_files, size=(side, side), mode="L" if opts.grayscale else "RGB")
    if nbytes <= bound:
        return False
    log.warning(
        f"note: {spec}: {n_files:,} images decoded at {side}x{side} take {_size(nbytes)}, over the decode "
        f"cache bound of {_size(bound)} (CNNLAB_CACHE_MAX_GB); decoding every batch from the files instead "
        "(slower epochs; raise CNNLAB_CACHE_MAX_GB to cache them)"
    )
    return True


def _cache_keys(*splits: list[tuple[Path, int]], opts: LoadOptions) -> tuple[str, ...]:
    """The decode-cache keys of the splits: writing one never prunes the other."""
    side = opts.img_size or DEFAULT_FOLDER_SIZE
    mode: ImageMode = "L" if opts.grayscale else "RGB"
    return tuple(cache_key([p for p, _ in items], size=(side, side), mode=mode) for items in splits)


def _take(items: list[tuple[Path, int]], n: int) -> list[tuple[Path, int]]:
    return [items[i] for i in stratified_take(np.array([label for _, label in items]), n)]


def _files_bundle(spec: str, fl: FileList, opts: LoadOptions) -> DataBundle:
    train_items, val_items = fl.train, fl.val
    if val_items is None:
        labels = np.array([label for _, label in train_items])
        tr, va = stratified_split(labels, opts.val_split, seed=opts.seed)
        train_items, val_items = [fl.train[i] for i in tr], [fl.train[i] for i in va]
    if opts.limit is not None:
        train_items = _take(train_items, opts.limit)
        val_items = _take(val_items, opts.limit)
    total = len(train_items) + len(val_items)
    stream = _stream_instead(spec, total, opts)
    if not (stream or opts.use_cache):  # else a batch at a time, or in the memory-mapped cache file
        _check_decoded_memory(total, 1 if opts.grayscale else 3, opts.img_size or DEFAULT_FOLDER_SIZE)
    keep = () if stream or not opts.use_cache else _cache_keys(train_items, val_items, opts=opts)
    train, sk1 = _decode_split(train_items, fl.classes, opts, done=0, total=total, stream=stream, keep=keep)
    val, sk2 = _decode_split(val_items, fl.classes, opts, done=len(train_items), total=total, stream=stream,
                             keep=keep)
    skipped = fl.skipped + sk1 + sk2
    if len(train) == 0:
        raise DataError(
            f"{spec}: none of the {len(train_items)} training images could be decoded "
            f"(first: {skipped[0].path}: {skipped[0].reason}); check the files"
        )
    return DataBundle(spec, fl.classes, train, val, tuple(train.images.shape[1:]), skipped)  # type: ignore[arg-type]


def load_data(
    spec: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    img_size: int | None = None,
    val_split: float = 0.2,
    seed: int = 0,
    limit: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    grayscale: bool | None = None,
    progress: ProgressFn | None = None,
    download: bool = False,
    use_cache: bool = True,
) -> DataBundle:
    """Load a dataset into memory as uint8 tensors, split into train and val.

    Args:
        spec: "sample", "mnist", "fashion-mnist", a folder of images, a CSV of path,label rows, or
            series: ``ucr:NAME`` (the UCR/UEA archive inside aeon) or ``series:FILE`` (see
            :mod:`cnnlab.data.series`).
        data_dir: Folder holding ``fashion-mnist/`` / ``mnist-10k/`` (else ``$CNNLAB_DATA_DIR``).
        img_size: Square side to resize to (default: native for IDX, 150 for folders/CSV).
        val_split: Fraction held out for val when the data has no val split of its own.
        seed: Seed of the deterministic stratified split (0 to 2**32 - 1, as every seed).
        limit: Keep only about ``limit`` samples per split (stratified, first ones) for quick runs.
        cache_dir: Decode cache folder (default ``$CNNLAB_CACHE_DIR`` or ``~/.cache/cnnlab``).
        grayscale: True -> 1 channel, False -> 3 channels, None -> the data's own (IDX 1, photos 3).
        progress: ``progress(done, total)`` while decoding image files.
        download: Allow torchvision to download MNIST/Fashion-MNIST when no local files are found.
        use_cache: False decodes folders in memory without touching the cache.

    Returns:
        A :class:`DataBundle`.

    Raises:
        DataError: one line naming the problem and the fix (unknown SPEC, missing/empty folder, ...).
    """
    if not 0.0 <= val_split < 1.0:
        raise DataArgumentError(f"{val_split}: must be at least 0 and below 1, e.g. 0.2", param="val_split")
    if img_size is not None and not 8 <= img_size <= 4096:
        raise DataArgumentError(f"{img_size}: must be between 8 and 4096 pixels", param="img_size")
    if limit is not None and limit < 1:
        raise DataArgumentError(f"{limit}: must be a positive number of samples per split", param="limit")
    check_seed(seed)
    opts = LoadOptions(data_dir, img_size, val_split, seed, limit, cache_dir, grayscale, progress, download,
                       use_cache)
    from .series import SeriesOptions, is_series_spec, load_series

    if is_series_spec(spec):  # ucr:NAME, series:FILE (cnnlab.data.series)
        return load_series(spec, SeriesOptions(val_split, seed, limit))
    if spec in DATASETS:
        return DATASETS[spec](opts)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".csv":
        return _files_bundle(spec, read_csv_list(path), opts)
    if path.is_dir() or (path.exists() and not path.is_dir()):
        return _files_bundle(spec, scan_folder(path), opts)
    names = ", ".join(DATASETS)
    if os.sep in spec or "/" in spec or spec.startswith((".", "~")):
        raise DataError(
            f"folder {spec} does not exist; pass an existing image folder, a .csv file or one of: {names}"
        )
    raise DataArgumentError(
        f"unknown data SPEC {spec!r}: not a dataset name nor an existing folder or .csv; "
        f"{did_you_mean(spec, DATASETS)}use one of: {names}, a folder of class sub-folders, a .csv of "
        "path,label rows, ucr:NAME or series:FILE"
    )
