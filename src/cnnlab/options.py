"""The options every command shares, checked the same way for the CLI, the web page and a notebook.

Each check raises a one-line :class:`~cnnlab.errors.ArgumentError` naming the option as the library
spells it (``param``); the CLI prints it as its flag (``max_channels`` -> ``--max-channels``). Nothing
here imports torch, so a command checks its options before the slow imports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from .errors import ArgumentError, CnnlabError, DataError, ModelArgumentError

__all__ = ["at_least", "check_data_exists", "figure_file", "filter_ranges", "image_paths", "input_size",
           "parse_filters", "run_and_images"]


def at_least(value: int, low: int, param: str, why: str = "") -> int:
    """``value``, or one line naming ``param`` (and ``why`` the bound) when it is below ``low``."""
    if value < low:
        raise ArgumentError(f"{value}: must be at least {low}{why}", param=param)
    return value


def input_size(text: str | None) -> tuple[int, int, int] | None:
    """``"3x224x224"`` -> ``(3, 224, 224)`` (None stays None: the model's own size)."""
    if text is None:
        return None
    if not re.fullmatch(r"\d+(x\d+){2}", text.strip().lower()):
        raise ModelArgumentError(f"{text!r}: write it as CxHxW, e.g. 3x224x224", param="input_size")
    c, h, w = (int(v) for v in text.strip().lower().split("x"))
    if min(c, h, w) < 1:
        raise ModelArgumentError(f"{text!r}: every dimension must be at least 1", param="input_size")
    return c, h, w


def model_input(text: str | None) -> tuple[int, ...] | None:
    """``--input`` of a command that takes any model: CxHxW (``3x224x224``), or CxL (``1x128``) for a 1-D one.

    None stays None (the model's own size).
    """
    if text is not None and not re.fullmatch(r"\d+(x\d+){1,2}", text.strip().lower()):
        raise ModelArgumentError(f"{text!r}: write it as CxHxW, e.g. 3x224x224, or CxL for a 1-D model, e.g. "
                                 "1x128", param="input_size")
    if text is None or not re.fullmatch(r"\d+x\d+", text.strip().lower()):
        return input_size(text)
    c, length = (int(v) for v in text.strip().lower().split("x"))
    if min(c, length) < 1:
        raise ModelArgumentError(f"{text!r}: every dimension must be at least 1", param="input_size")
    return c, length


def check_data_exists(spec: str, *, param: str | None = "data") -> None:
    """A data SPEC that names a path must exist: said at once, before the slow imports.

    Dataset names (``sample``, ``mnist``) are checked by the data layer; this only catches a folder or
    file that is not there, the commonest mistake, in the time ``cnnlab --help`` takes.
    """
    if spec.startswith("ucr:"):  # a dataset inside aeon: checked by the data layer (cnnlab.data.series)
        return
    spec = spec.removeprefix("series:")  # series:FILE names a file (cnnlab.data.series)
    path = Path(spec).expanduser()
    looks_like_path = os.sep in spec or "/" in spec or spec.startswith((".", "~")) or path.suffix != ""
    if looks_like_path and not path.exists():
        raise DataError(f"{spec}: no such folder or file (it does not exist); pass an existing image folder "
                        "or .csv file, or a dataset name such as sample", param=param)


def figure_file(out: Path, writer: str | None = None) -> Path:
    """``out``: a figure file matplotlib writes, in a writable folder, not a file of a run folder that
    ``writer`` (the command) does not own (checked before any work)."""
    from matplotlib.figure import Figure

    from ._io import ensure_writable_dir

    formats = Figure().canvas.get_supported_filetypes()
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in formats:
        what = f".{suffix} files" if suffix else "a file without a suffix"
        raise ArgumentError(f"{out}: matplotlib cannot write {what}; use .png, .svg, .pdf or .jpg",
                            param="out")
    from .runfolder.folder import check_output

    ensure_writable_dir(out.parent if str(out.parent) else Path("."), option="--out")
    return check_output(out, writer=writer)


def filter_ranges(text: str) -> list[range]:
    """``"0-15"``, ``"0,3,7"`` or ``"0-3,8"`` -> ranges of filter indices (one line naming ``filters``)."""
    ranges: list[range] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, sep, hi = part.partition("-")
            ranges.append(range(int(lo), int(hi) + 1) if sep else range(int(lo), int(lo) + 1))
    except ValueError:
        raise ArgumentError(f"{text!r}: use a range or list such as 0-15 or 0,3,7", param="filters") from None
    if not any(ranges):
        raise ArgumentError(f"{text!r}: give at least one filter index, e.g. 0-15", param="filters")
    return ranges


def parse_filters(text: str, channels: int | None = None) -> list[int]:
    """The filter indices of ``text``, checked against ``channels`` (the layer's filter count).

    The ranges are checked before any list is made, so ``0-100000000`` costs nothing.
    """
    ranges = filter_ranges(text)
    top = max(r[-1] for r in ranges if r)
    if channels is not None and top >= channels:
        raise ArgumentError(f"{text!r}: the layer has {channels} filters; use 0..{channels - 1}",
                            param="filters")
    return [i for r in ranges for i in r]


def image_paths(items: Sequence[str]) -> list[Path]:
    """Image files, the files of folders among them (missing files fail here, before the model loads)."""
    if not items:
        raise CnnlabError("IMAGE: give at least one image file or folder")
    from .train.evaluate import image_files

    return image_files(list(items))


def run_and_images(inputs: list[str], model: str | None, *,
                   files_first: bool = False) -> tuple[str | None, list[str]]:
    """``RUN IMAGE...`` or ``IMAGE...`` with a ``model`` name -> (the run or None, the images).

    With ``files_first``, images that are not series (``ucr:``, ``.npy`` ...) must exist: checked here,
    before the model loads.
    """
    if model is not None:
        run, images = None, inputs
    elif len(inputs) < 2:
        raise CnnlabError("give RUN IMAGE... (a run folder, then images) or `model` NAME IMAGE...")
    else:
        run, images = inputs[0], inputs[1:]
    if files_first:
        from .data.series import names_series

        if not names_series(images):
            image_paths(images)
    return run, images
