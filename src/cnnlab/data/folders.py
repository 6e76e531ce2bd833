"""Image folders and CSV file lists: scanning them into (file, label) lists, with clear errors.

Layouts:
  - ``root/train/<class>/*`` + ``root/val/<class>/*`` (``valid``, ``validation`` or ``test`` also
    name the second split): used as given.
  - ``root/<class>/*``: split into train/val, stratified and deterministic (``--val-split``, seed).
  - A CSV of ``path,label`` rows (header optional; paths relative to the CSV's folder): split the
    same way.
Files are found recursively inside each class folder; hidden files and files whose extension is not
an image type are ignored (as torchvision's ``ImageFolder`` does). Broken images are detected later,
while decoding, and listed as skipped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .core import SkippedFile

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
VAL_NAMES = ("val", "valid", "validation", "test")
_FIX = "put images in <folder>/<class>/*.jpg, or <folder>/train/<class>/ and <folder>/val/<class>/"


@dataclass
class FileList:
    """Scanned files: (path, label index) per split; ``val`` is None when the caller must split."""

    classes: list[str]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]] | None
    skipped: list[SkippedFile]


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)  # .ipynb_checkpoints, ._x
        and p.is_file()
    )


def _class_dirs(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files, for every non-hidden sub-folder holding at least one image."""
    out: dict[str, list[Path]] = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = _images_in(d)
        if files:
            out[d.name] = files
    return out


def _check_classes(where: Path, classes: list[str], *, csv_file: bool = False) -> None:
    if not classes:
        raise DataError(f"folder {where} has no class sub-folders with images; {_FIX}")
    if len(classes) == 1 and csv_file:
        raise DataError(
            f"CSV file {where} has only one label ({classes[0]!r}); "
            "a classifier needs rows of at least two labels"
        )
    if len(classes) == 1:
        raise DataError(
            f"folder {where} has only one class ({classes[0]!r}); a classifier needs at least two class "
            "folders side by side, e.g. cat/ and dog/"
        )


def scan_folder(root: Path) -> FileList:
    """Scan an image folder (either layout of the module docstring).

    Raises:
        DataError: missing or empty folder, a single class, or a val/ class unknown to train/.
    """
    if not root.exists():
        raise DataError(f"folder {root} does not exist; pass an existing folder of class sub-folders")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass a folder of class sub-folders or a .csv file list")
    val_dir = next((root / n for n in VAL_NAMES if (root / n).is_dir()), None)
    if (root / "train").is_dir() and val_dir is not None:
        train = _class_dirs(root / "train")
        val = _class_dirs(val_dir)
        classes = sorted(train)
        _check_classes(root / "train", classes)
        unknown = sorted(set(val) - set(train))
        if unknown:
            raise DataError(
                f"{val_dir} has class folder(s) {', '.join(unknown)} that {root / 'train'} lacks; "
                "give both splits the same class folders"
            )
        index = {c: i for i, c in enumerate(classes)}
        return FileList(
            classes,
            [(p, index[c]) for c in classes for p in train[c]],
            [(p, index[c]) for c in sorted(val) for p in val[c]],
            [],
        )
    by_class = _class_dirs(root)
    classes = sorted(by_class)
    if not classes and _images_in(root):
        raise DataError(f"folder {root} holds images but no class sub-folders; {_FIX}")
    _check_classes(root, classes)
    return FileList(classes, [(p, i) for i, c in enumerate(classes) for p in by_class[c]], None, [])


def read_csv_list(csv_path: Path) -> FileList:
    """Read a CSV of ``path,label`` rows (optional header; paths relative to the CSV's folder).

    Rows whose file does not exist are listed as skipped.

    Raises:
        DataError: unreadable CSV, a malformed row, no rows, or a single class.
    """
    if not csv_path.is_file():
        raise DataError(f"CSV file {csv_path} does not exist; pass an existing .csv of path,label rows")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"{csv_path}: cannot read CSV ({exc}); save it as UTF-8 text with path,label rows"
        ) from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    items: list[tuple[Path, str]] = []
    skipped: list[SkippedFile] = []
    for line, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DataError(f"{csv_path}: row {line} is not 'path,label' ({','.join(row)!r}); fix that row")
        p = Path(row[0].strip()).expanduser()
        p = p if p.is_absolute() else csv_path.parent / p
        if not p.is_file():
            skipped.append(SkippedFile(str(p), "file not found (listed in the CSV)"))
            continue
        items.append((p, row[1].strip()))
    classes = sorted({label for _, label in items})
    if not classes:
        raise DataError(f"{csv_path} lists no existing image files; write rows of path,label")
    _check_classes(csv_path, classes, csv_file=True)
    index = {c: i for i, c in enumerate(classes)}
    return FileList(classes, [(p, index[c]) for p, c in items], None, skipped)
