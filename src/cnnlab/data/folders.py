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

Integrity (one file, one label, one split):
  - Symbolic links inside class folders are not followed (a loop cannot hang the scan). A class folder
    that is a link to the folder being scanned or to a folder above it (``c -> .``) would hold every
    image again: it is not a class, and is listed as skipped.
  - The same file twice (a repeated CSV row, a second path spelling, a link or a hard link) with the
    same label is used once; the repeats are listed as skipped. A file in both train/ and val/ is kept
    in train only (listed as skipped from val), so validation never scores a training image.
  - The same file under two labels is an error naming both, since no label can be picked for it.
"""

from __future__ import annotations

import csv
import os
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
    """Image files under ``folder``, sorted; hidden names are skipped, links to folders not followed."""
    found = []
    for here, dirs, files in os.walk(folder):  # followlinks=False
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .ipynb_checkpoints, ._x
        found += [
            Path(here, name)
            for name in files
            if not name.startswith(".")
            and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
            and os.path.isfile(os.path.join(here, name))  # a link to a file counts; a dangling one does not
        ]
    return sorted(found)


def _contains_scan(link: Path, folder: Path) -> bool:
    """Whether the folder symbolic link ``link`` points at ``folder`` or a folder above it."""
    target, here = link.resolve(), folder.resolve()
    return target == here or target in here.parents


def _class_dirs(folder: Path, skipped: list[SkippedFile]) -> dict[str, list[Path]]:
    """Class name -> its image files, for every non-hidden sub-folder holding at least one image.

    Links that would make the scanned folder a class of itself are appended to ``skipped``.
    """
    out: dict[str, list[Path]] = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if d.is_symlink() and _contains_scan(d, folder):
            reason = f"link to {os.readlink(d)}, which holds {folder}: not a class"
            skipped.append(SkippedFile(str(d), reason))
            continue
        files = _images_in(d)
        if files:
            out[d.name] = files
    return out


def _identity(path: Path) -> tuple[int, int] | str:
    """What makes two paths the same file: device and inode (links, hard links), else the real path."""
    try:
        st = path.stat()
    except OSError:
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino) if st.st_ino else os.path.realpath(path)


Items = list[tuple[Path, int]]


def _one_label_one_split(where: Path, classes: list[str], train: Items, val: Items | None,
                         skipped: list[SkippedFile]) -> tuple[Items, Items | None]:
    """Drop repeats of a file (train before val), appending them to ``skipped``.

    Raises:
        DataError: a file under two labels, naming it, both labels and how many more there are.
    """
    first: dict[tuple[int, int] | str, tuple[Path, int, str]] = {}
    conflicts: list[str] = []

    def keep(items: Items, split: str) -> Items:
        kept = []
        for path, label in items:
            key = _identity(path)
            if key not in first:
                first[key] = (path, label, split)
                kept.append((path, label))
                continue
            seen, seen_label, seen_split = first[key]
            if seen_label != label:
                alias = "" if seen == path else f" (as {seen})"
                both = f"{classes[seen_label]!r}{alias} and {classes[label]!r}"
                conflicts.append(f"{path} is labelled both {both}")
            elif seen_split != split:
                reason = f"same file as {seen} of the training split, kept there only"
                skipped.append(SkippedFile(str(path), reason))
            else:
                skipped.append(SkippedFile(str(path), f"repeat of {seen} (same file, same label), used once"))
        return kept

    train = keep(train, "train")
    val = None if val is None else keep(val, "val")
    if conflicts:
        more = f" (and {len(conflicts) - 1} more such files)" if len(conflicts) > 1 else ""
        raise DataError(f"{where}: {conflicts[0]}{more}; give each image one label")
    return train, val


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
        DataError: missing or empty folder, a single class, a val/ class unknown to train/, or a file
            under two labels.
    """
    if not root.exists():
        raise DataError(f"folder {root} does not exist; pass an existing folder of class sub-folders")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; pass a folder of class sub-folders or a .csv file list")
    val_dir = next((root / n for n in VAL_NAMES if (root / n).is_dir()), None)
    if (root / "train").is_dir() and val_dir is not None:
        skipped: list[SkippedFile] = []
        train = _class_dirs(root / "train", skipped)
        val = _class_dirs(val_dir, skipped)
        classes = sorted(train)
        _check_classes(root / "train", classes)
        unknown = sorted(set(val) - set(train))
        if unknown:
            raise DataError(
                f"{val_dir} has class folder(s) {', '.join(unknown)} that {root / 'train'} lacks; "
                "give both splits the same class folders"
            )
        index = {c: i for i, c in enumerate(classes)}
        train_items, val_items = _one_label_one_split(
            root,
            classes,
            [(p, index[c]) for c in classes for p in train[c]],
            [(p, index[c]) for c in sorted(val) for p in val[c]],
            skipped,
        )
        return FileList(classes, train_items, val_items, skipped)
    skipped = []
    by_class = _class_dirs(root, skipped)
    classes = sorted(by_class)
    if not classes and _images_in(root):
        raise DataError(f"folder {root} holds images but no class sub-folders; {_FIX}")
    _check_classes(root, classes)
    items, _ = _one_label_one_split(
        root, classes, [(p, i) for i, c in enumerate(classes) for p in by_class[c]], None, skipped
    )
    return FileList(classes, items, None, skipped)


def read_csv_list(csv_path: Path) -> FileList:
    """Read a CSV of ``path,label`` rows (optional header; paths relative to the CSV's folder).

    Rows whose file does not exist, and repeats of a file with the same label, are listed as skipped.

    Raises:
        DataError: unreadable CSV, a malformed row, no rows, a single class, or a file under two labels.
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
    unique, _ = _one_label_one_split(csv_path, classes, [(p, index[c]) for p, c in items], None, skipped)
    return FileList(classes, unique, None, skipped)
