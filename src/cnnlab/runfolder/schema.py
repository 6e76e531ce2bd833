"""The schema of a run folder's small files, checked before anything uses them.

A run folder is read back by :func:`~cnnlab.runfolder.folder.load_run`, ``--resume`` and the report. Each
reader here checks one file against what :mod:`cnnlab.train.run` writes and ends a damaged file in one
line that names the file, the key and the fix, instead of a ``TypeError``, a ``KeyError`` or a model
that predicts "nan%":

* ``classes.json``: a non-empty list of distinct, non-empty strings;
* ``run.json``: ``in_chans`` (int >= 1), ``mean`` / ``std`` (``in_chans`` finite numbers, ``std`` > 0),
  ``image_size`` ([C, H, W] whole numbers >= 1, C = ``in_chans``), optionally ``num_classes`` (int >= 1,
  agreeing with ``classes.json``), ``model`` and ``head`` (strings), ``best_epoch`` (int),
  ``best_val_loss`` (number);
* a checkpoint (``checkpoints/*.ckpt``): a torch file that loads with ``weights_only=True`` (no pickle
  code runs) and holds ``state_dict``, ``epoch`` and ``global_step``.

``config.yaml`` is checked by :meth:`cnnlab.train.config.TrainConfig.from_yaml` (types per option) and
``metrics.csv`` by :func:`cnnlab.train.callbacks.read_metrics`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import CnnlabError

__all__ = ["RunFileError", "check_checkpoint", "read_classes", "read_info"]

#: The fix every damaged-file message ends with.
FIX = "train the run again or restore the file"


class RunFileError(CnnlabError):
    """A file of a run folder that is missing, unreadable or does not hold what cnnlab wrote.

    Attributes:
        path: The file.
        key: The key at fault ("" when the whole file is).
    """

    def __init__(self, path: Path, problem: str, *, key: str = "", fix: str = FIX) -> None:
        where = f"{path}: key {key!r}" if key else str(path)
        super().__init__(f"{where} {problem}; {fix}")
        self.path = path
        self.key = key


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(path, "is missing") from None
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunFileError(path, f"is damaged, not JSON ({first})") from None


def read_classes(path: Path) -> list[str]:
    """``classes.json``: the class names in output order.

    Raises:
        RunFileError: Not a non-empty list of distinct, non-empty strings.
    """
    value = _read_json(path)
    if not isinstance(value, list) or not value:
        raise RunFileError(path, f"must hold a non-empty list of class names, not {_type_name(value)}")
    bad = [v for v in value if not isinstance(v, str) or not v]
    if bad:
        raise RunFileError(path, f"must hold class names (non-empty strings), not {bad[0]!r} "
                                 f"({_type_name(bad[0])})")
    seen: set[str] = set()
    for name in value:
        if name in seen:
            raise RunFileError(path, f"names the class {name!r} twice")
        seen.add(name)
    return list(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(path: Path, info: dict[str, Any], key: str, n: int, *, positive: bool = False) -> None:
    value = info[key]
    if not isinstance(value, list) or len(value) != n or not all(_number(v) for v in value):
        raise RunFileError(path, f"must be a list of {n} finite number(s) (one per channel), not {value!r}",
                           key=key)
    if positive and not all(v > 0 for v in value):
        raise RunFileError(path, f"must be above 0 for every channel (inputs are divided by it), "
                                 f"not {value!r}", key=key)


def read_info(path: Path, classes: list[str]) -> dict[str, Any]:
    """``run.json``: how to build and feed the run's model, checked against ``classes``.

    Args:
        path: The ``run.json`` file.
        classes: The run's class names (from :func:`read_classes`).

    Returns:
        The parsed mapping.

    Raises:
        RunFileError: A missing key, a value of the wrong type or out of range.
    """
    info = _read_json(path)
    if not isinstance(info, dict):
        raise RunFileError(path, f"must hold a mapping, not {_type_name(info)}")
    for key in ("in_chans", "mean", "std", "image_size"):
        if key not in info:
            raise RunFileError(path, "is missing", key=key)
    chans = info["in_chans"]
    if not _whole(chans) or chans < 1:
        raise RunFileError(path, f"must be a whole number >= 1, not {chans!r}", key="in_chans")
    _numbers(path, info, "mean", chans)
    _numbers(path, info, "std", chans, positive=True)
    size = info["image_size"]
    if not isinstance(size, list) or len(size) not in (2, 3) or not all(_whole(v) and v >= 1 for v in size):
        raise RunFileError(path, f"must be [C, H, W] ([C, L] for series), whole numbers >= 1, not {size!r}",
                           key="image_size")
    if size[0] != chans:
        raise RunFileError(path, f"{size!r} has {size[0]} channel(s) but `in_chans` is {chans}",
                           key="image_size")
    if "num_classes" in info:
        n = info["num_classes"]
        if not _whole(n) or n < 1:
            raise RunFileError(path, f"must be a whole number >= 1, not {n!r}", key="num_classes")
        if n != len(classes) and not (n == 1 and len(classes) == 2):
            raise RunFileError(path, f"is {n} but classes.json names {len(classes)} classes",
                               key="num_classes")
    for key, ok, what in (("model", lambda v: isinstance(v, str), "a string"),
                          ("head", lambda v: isinstance(v, str), "a string"),
                          ("best_epoch", _whole, "a whole number"),
                          ("best_val_loss", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                           "a number")):
        if key in info and not ok(info[key]):
            raise RunFileError(path, f"must be {what}, not {info[key]!r}", key=key)
    return info


def check_checkpoint(path: Path, *, fix: str) -> dict[str, Any]:
    """Load a Lightning checkpoint safely (``weights_only=True``, memory-mapped) and check its keys.

    Args:
        path: The ``.ckpt`` file.
        fix: What the user should do when it is damaged (ends the message).

    Returns:
        The checkpoint (tensors memory-mapped: reading it costs no memory).

    Raises:
        RunFileError: Missing, truncated, not a checkpoint, or holding pickled code (refused unrun).
    """
    import torch

    if not path.is_file():
        raise RunFileError(path, "is missing", fix=fix)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # truncated, not a zip, or a pickle weights_only refuses: all damage here
        text = str(exc).strip()
        first = text.splitlines()[0].split(". ")[0] if text else type(exc).__name__
        raise RunFileError(path, f"is damaged ({first})", fix=fix) from None
    if not isinstance(ckpt, dict):
        raise RunFileError(path, f"is not a checkpoint (holds {_type_name(ckpt)})", fix=fix)
    for key in ("state_dict", "epoch", "global_step"):
        if key not in ckpt:
            raise RunFileError(path, "is missing", key=key, fix=fix)
    if not (isinstance(ckpt["state_dict"], dict) and _whole(ckpt["epoch"]) and _whole(ckpt["global_step"])):
        raise RunFileError(path, "is not a Lightning checkpoint (wrong types)", fix=fix)
    return ckpt
