"""Series data: the UCR/UEA archive copies inside the ``aeon`` wheel, and the user's own signals.

Two data SPECs (see :func:`load_series`):

* ``ucr:NAME`` (``ucr:GunPoint``, ``ucr:ItalyPowerDemand``, ``ucr:BasicMotions``, ...): a dataset of the
  UCR/UEA time-series archive as the PyPI package ``aeon`` ships it inside its wheel
  (``aeon/datasets/data/NAME/NAME_TRAIN.ts``), read with aeon's own ``.ts`` loader; nothing is
  downloaded. The archive's TRAIN/TEST split is the train/validation split, as every published
  result on it uses. :func:`list_ucr` names the classification datasets available.
* ``series:FILE``: your own signals, one series a row. ``.csv``/``.tsv``/``.txt``: ``label,x1,...,xL``
  rows (the archive's own text layout; a header row is skipped when its values are not numbers);
  ``.npy``: the same as one 2-D array (first column the label); ``.npz``: arrays ``x`` ([N, L] or
  [N, C, L]) and ``y`` ([N]), optionally ``x_val``/``y_val`` for a validation split of its own. Without
  one the validation split is ``val_split`` of the series, stratified by class.

:func:`read_series_inputs` reads the series a command line names (``ucr:NAME[:INDEX]`` or files of one
series) for ``explain`` and ``predict``.

Series are float32 ``[N, C, L]`` (C > 1: multivariate, handled: the models take C input channels) and are
used as they are (the archive's are z-normalised already). Series of unequal length or with missing
values are refused in one line naming the dataset and the fix.

``aeon`` is imported only when a ``ucr:`` SPEC is read (its import takes seconds).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..errors import ArgumentError, DataArgumentError, DataError, did_you_mean
from .core import DataBundle, ImageTensorDataset, stratified_split, stratified_take

#: The data SPEC prefixes of series data.
UCR_PREFIX = "ucr:"
FILE_PREFIX = "series:"
SERIES_PREFIXES = (UCR_PREFIX, FILE_PREFIX)
#: Suffixes ``series:FILE`` reads.
SERIES_SUFFIXES = (".csv", ".tsv", ".txt", ".npy", ".npz")


@dataclass(frozen=True)
class SeriesOptions:
    """The options of :func:`~cnnlab.data.load_data` that apply to series (sizes and colours do not)."""

    val_split: float = 0.2
    seed: int = 0
    limit: int | None = None


class SeriesDataset(ImageTensorDataset):
    """A whole split of series as one float32 tensor ``[N, C, L]``; batches are index slices of it.

    The same interface as :class:`~cnnlab.data.core.ImageTensorDataset` (``images`` holds the series),
    so the data module, evaluation and the report treat both alike.
    """

    def __init__(self, series: torch.Tensor, labels: torch.Tensor, classes: list[str],
                 paths: list[str] | None = None) -> None:
        if not series.is_floating_point() or series.ndim != 3:
            raise ValueError(f"series must be float [N,C,L], got {series.dtype} {list(series.shape)}")
        if labels.shape != (series.shape[0],):
            raise ValueError(f"labels shape {list(labels.shape)} does not match {series.shape[0]} series")
        self.images = series.to(torch.float32).contiguous()
        self.labels = labels.to(torch.int64)
        self.classes = list(classes)
        self.paths = paths
        self.reader = None

    def subset(self, index: torch.Tensor | np.ndarray) -> SeriesDataset:
        """A new dataset holding only the series at ``index`` (a copy, in that order)."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.int64)
        return SeriesDataset(self.images.index_select(0, idx), self.labels[idx], self.classes)


def is_series_spec(spec: str) -> bool:
    """Is ``spec`` a series data SPEC (``ucr:NAME`` or ``series:FILE``)?"""
    return spec.startswith(SERIES_PREFIXES)


# ------------------------------------------------------------------------------------ the UCR archive


def _aeon_data_dir() -> Path | None:
    """aeon's folder of shipped datasets, found without importing aeon (None when aeon is missing)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


@lru_cache(maxsize=1)
def _ucr_files() -> dict[str, tuple[Path, Path]]:
    """``{name: (TRAIN.ts, TEST.ts)}`` of the classification datasets aeon ships."""
    root = _aeon_data_dir()
    if root is None or not root.is_dir():
        return {}
    found: dict[str, tuple[Path, Path]] = {}
    for train in sorted(root.glob("*/*_TRAIN.ts")):
        name = train.name[: -len("_TRAIN.ts")]
        test = train.with_name(f"{name}_TEST.ts")
        if test.is_file() and _has_class_labels(train):
            found[name] = (train, test)
    return found


def _has_class_labels(path: Path) -> bool:
    """Does the ``.ts`` header declare class labels (``@classLabel true``)? Regression sets do not."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            low = line.strip().lower()
            if low.startswith("@classlabel"):
                return low.split()[1:2] == ["true"]
            if low.startswith("@data"):
                return False
    return False


def list_ucr() -> list[str]:
    """Names of the UCR/UEA classification datasets inside the installed aeon wheel (``ucr:NAME``)."""
    return list(_ucr_files())


def _read_ts(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One ``.ts`` file with aeon's loader -> (float32 [N, C, L], str labels [N]); unusable data refused."""
    from aeon.datasets import load_from_ts_file  # lazy: importing aeon takes seconds

    x, y = load_from_ts_file(str(path))
    if isinstance(x, list):  # aeon returns a list of [C, L_i] arrays when the lengths differ
        lengths = sorted({int(a.shape[-1]) for a in x})
        equal = [n for n in list_ucr() if n.startswith(f"{name}_eq")]
        fix = f"use ucr:{equal[0]} (its equal-length version) or " if equal else ""
        raise DataError(
            f"ucr:{name}: series of unequal length ({lengths[0]} to {lengths[-1]} samples); cnnlab trains on "
            f"equal lengths: {fix}resample them to one length and give them as series:FILE.npz",
            param="data",
        )
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DataError(
            f"ucr:{name}: {int((~np.isfinite(x)).sum())} missing values (NaN); fill them in and give the "
            "series as series:FILE.npz",
            param="data",
        )
    return x, np.asarray(y).astype(str)


def _labels(y_train: np.ndarray, y_val: np.ndarray, spec: str
            ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Class names (sorted, numerically when they are numbers) and integer labels of both splits."""
    names = sorted(set(y_train.tolist()) | set(y_val.tolist()))
    with contextlib.suppress(ValueError):  # numeric labels in numeric order (2 before 10)
        names = sorted(names, key=float)
    if len(names) < 2:
        raise DataError(f"{spec}: only one class ({names[0] if names else 'none'}); a classifier needs two",
                        param="data")
    index = {c: i for i, c in enumerate(names)}
    return names, np.array([index[c] for c in y_train]), np.array([index[c] for c in y_val])


def _bundle(spec: str, x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray,
            opts: SeriesOptions) -> DataBundle:
    if x_tr.shape[1:] != x_va.shape[1:]:
        raise DataError(f"{spec}: train series are {list(x_tr.shape[1:])} but validation series "
                        f"{list(x_va.shape[1:])}; give both splits the same channels and length",
                        param="data")
    classes, l_tr, l_va = _labels(y_tr, y_va, spec)
    if opts.limit is not None:
        keep_tr, keep_va = stratified_take(l_tr, opts.limit), stratified_take(l_va, opts.limit)
        x_tr, l_tr, x_va, l_va = x_tr[keep_tr], l_tr[keep_tr], x_va[keep_va], l_va[keep_va]
    train = SeriesDataset(torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(l_tr), classes)
    val = SeriesDataset(torch.from_numpy(np.ascontiguousarray(x_va)), torch.from_numpy(l_va), classes)
    shape = (int(x_tr.shape[1]), int(x_tr.shape[2]))
    return DataBundle(spec, classes, train, val, shape, [])


@lru_cache(maxsize=8)
def _ucr_arrays(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train, test = _ucr_files()[name]
    return (*_read_ts(train, name), *_read_ts(test, name))


def load_ucr(name: str, opts: SeriesOptions) -> DataBundle:
    """``ucr:NAME``: the archive's TRAIN split for training, its TEST split for validation.

    Raises:
        DataError: aeon missing, an unknown name (listing the available ones), unequal lengths, NaNs.
    """
    files = _ucr_files()
    if not files:
        raise DataError("ucr: datasets come from the aeon package, which is not installed; "
                        "pip install aeon (a cnnlab dependency)", param="data")
    if name not in files:
        raise DataArgumentError(
            f"ucr:{name}: not among the UCR/UEA datasets shipped with aeon; {did_you_mean(name, files)}"
            f"use one of: {', '.join(files)}; or give your own as series:FILE.csv",
            param="data",
        )
    x_tr, y_tr, x_va, y_va = _ucr_arrays(name)
    return _bundle(f"{UCR_PREFIX}{name}", x_tr, y_tr, x_va, y_va, opts)


# ------------------------------------------------------------------------------------ your own series


def _text_rows(path: Path) -> np.ndarray:
    """A CSV/TSV of ``label,x1,...,xL`` rows -> object array [N, 1 + L] (labels kept as text)."""
    import csv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh, delimiter=delimiter) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read ({exc}); save it as text rows of label,x1,...,xL",
                        param="data") from None

    def numeric(cells: list[str]) -> bool:
        try:
            [float(c) for c in cells]
        except ValueError:
            return False
        return True

    if rows and not numeric(rows[0][1:]):
        rows = rows[1:]  # a header
    lengths = sorted({len(r) for r in rows})
    if not rows or lengths[0] < 3:
        raise DataError(f"{path}: no rows of label,x1,...,xL (at least two values a series); write one "
                        "series a row, its class first", param="data")
    if len(lengths) > 1:
        raise DataError(f"{path}: series of unequal length ({lengths[0] - 1} to {lengths[-1] - 1} values); "
                        "resample them to one length", param="data")
    for line, r in enumerate(rows, start=1):
        if not numeric(r[1:]):
            raise DataError(f"{path}: row {line} has values that are not numbers; fix that row", param="data")
    return np.array(rows, dtype=object)


def _split_rows(rows: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([str(v).strip() for v in rows[:, 0]])
    y = np.array([v[:-2] if v.endswith(".0") else v for v in y])  # 1.0 read from a float array is class 1
    x = rows[:, 1:].astype(np.float32)[:, None, :]
    if not np.isfinite(x).all():
        raise DataError(f"{path}: missing values (NaN or empty cells); fill them in", param="data")
    return x, y


def _npz_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc}); save it with numpy.savez(x=..., y=...)",
                        param="data") from None
    if "x" not in arrays or "y" not in arrays:
        raise DataError(f"{path}: holds {', '.join(arrays) or 'nothing'}; save the series as x and their "
                        "classes as y: numpy.savez(FILE, x=x, y=y)", param="data")

    def prepare(x: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float32)
        x = x[:, None, :] if x.ndim == 2 else x
        if x.ndim != 3 or len(y) != len(x):
            raise DataError(f"{path}: {what} must be [N, L] or [N, C, L] with N labels, got {list(x.shape)} "
                            f"and {len(y)} labels", param="data")
        if not np.isfinite(x).all():
            raise DataError(f"{path}: {what} has missing values (NaN); fill them in", param="data")
        return x, np.asarray(y).astype(str)

    x, y = prepare(arrays["x"], arrays["y"], "x")
    val = None
    if "x_val" in arrays and "y_val" in arrays:
        val = prepare(arrays["x_val"], arrays["y_val"], "x_val")
    return x, y, val


def load_series_file(path: Path, opts: SeriesOptions) -> DataBundle:
    """``series:FILE``: your own series (see the module docstring for the layouts).

    Raises:
        DataError: A missing or unreadable file, unequal lengths, missing values, a single class.
    """
    spec = f"{FILE_PREFIX}{path}"
    if not path.is_file():
        raise DataError(f"{path}: no such file; give series:FILE with FILE a .csv/.tsv/.npy/.npz of series",
                        param="data")
    suffix = path.suffix.lower()
    if suffix not in SERIES_SUFFIXES:
        raise DataError(f"{path}: series are read from {', '.join(SERIES_SUFFIXES)} files; save them as one",
                        param="data")
    val = None
    if suffix == ".npz":
        x, y, val = _npz_arrays(path)
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable .npy ({exc})", param="data") from None
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise DataError(f"{path}: a [N, 1 + L] array is expected (class first, then the series), got "
                            f"{list(arr.shape)}", param="data")
        x, y = _split_rows(arr.astype(object), path)
    else:
        x, y = _split_rows(_text_rows(path), path)
    if val is not None:
        return _bundle(spec, x, y, val[0], val[1], opts)
    names = sorted(set(y.tolist()))
    labels = np.array([names.index(v) for v in y])
    tr, va = stratified_split(labels, opts.val_split, seed=opts.seed)
    return _bundle(spec, x[tr], y[tr], x[va], y[va], opts)


def load_series(spec: str, opts: SeriesOptions) -> DataBundle:
    """A series data SPEC (``ucr:NAME`` or ``series:FILE``) as a :class:`DataBundle` of float series.

    Args:
        spec: ``ucr:NAME`` or ``series:FILE``.
        opts: The options of :func:`~cnnlab.data.load_data` (``val_split``, ``seed``, ``limit`` are used;
            image sizes and channels do not apply to series).

    Returns:
        The bundle; ``image_shape`` is (C, L).
    """
    if spec.startswith(UCR_PREFIX):
        return load_ucr(spec[len(UCR_PREFIX):], opts)
    return load_series_file(Path(spec[len(FILE_PREFIX):]).expanduser(), opts)


def read_one_series(path: Path) -> np.ndarray:
    """One series from a ``.npy`` ([L] or [C, L]) or a ``.csv``/``.txt`` of values (one row, or one column).

    Returns:
        float32 [C, L].

    Raises:
        DataError: A missing or unreadable file, or a shape that is not one series.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file; give a .npy or .csv holding one series")
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            arr = np.loadtxt(path, delimiter=delimiter, dtype=np.float32, ndmin=2)
            arr = arr.T if arr.shape[1] == 1 else arr
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read one series ({exc}); save it as a .npy or a row of numbers"
                        ) from None
    arr = np.asarray(arr, dtype=np.float32)
    arr = arr[None, :] if arr.ndim == 1 else arr
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise DataError(f"{path}: one series [L] or [C, L] of finite numbers expected, got {list(arr.shape)}")
    return arr


# ------------------------------------------------------------- series named on a command line


def per_class_examples(dataset: ImageTensorDataset, per_class: int) -> list[int]:
    """The first ``per_class`` indices of every class, class by class (deterministic)."""
    picked: list[int] = []
    for c in range(len(dataset.classes)):
        picked += (dataset.labels == c).nonzero().flatten()[:per_class].tolist()
    return picked


def _from_spec(item: str, per_class: int) -> tuple[torch.Tensor, list[str], list[str]]:
    """``ucr:NAME[:I]`` -> (series [n, C, L], names, class names) from the validation split."""
    spec, index = item, None
    head, _, tail = item.rpartition(":")
    if tail.isdigit() and head.count(":") >= 1:
        spec, index = head, int(tail)
    val = load_series(spec, SeriesOptions()).val
    if index is None:
        picks = per_class_examples(val, per_class)
    elif not 0 <= index < len(val):
        raise DataError(f"{item}: {spec} has {len(val)} validation series; give an index 0..{len(val) - 1}")
    else:
        picks = [index]
    x = val.images[picks].float()
    return x, [f"{spec}:{i}" for i in picks], [val.classes[int(val.labels[i])] for i in picks]


def names_series(items: Sequence[str]) -> bool:
    """Do ``items`` all name series (``ucr:``/``series:`` SPECs, ``.npy``/``.csv``/``.tsv``/``.txt``)?"""
    return bool(items) and all(is_series_spec(i) or Path(i).suffix.lower() in SERIES_SUFFIXES for i in items)


def read_series_inputs(
    items: list[str], *, per_class: int = 3
) -> tuple[torch.Tensor, list[str], list[str | None]]:
    """The series named on the command line (see the module docstring).

    Args:
        items: ``ucr:NAME``, ``ucr:NAME:I``, ``series:FILE[:I]`` or files holding one series.
        per_class: Series per class for a bare data SPEC.

    Returns:
        (float [N, C, L], names, true class names or None where unknown).

    Raises:
        DataError: A file that is not one series, an index out of range, series of different shapes.
    """
    if not items:
        raise ArgumentError("give at least one series: ucr:NAME[:INDEX], or a .npy/.csv file of one series")
    parts: list[torch.Tensor] = []
    names: list[str] = []
    labels: list[str | None] = []
    for item in items:
        if is_series_spec(item):
            x, n, lab = _from_spec(item, per_class)
            parts.append(x)
            names += n
            labels += lab
        else:
            parts.append(torch.from_numpy(read_one_series(Path(item)))[None])
            names.append(item)
            labels.append(None)
    shapes = sorted({tuple(p.shape[1:]) for p in parts})
    if len(shapes) > 1:
        raise DataError(f"series of different shapes {[list(s) for s in shapes]}; explain one kind at a time")
    return torch.cat(parts), names, labels
