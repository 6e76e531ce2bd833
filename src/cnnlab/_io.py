"""Atomic file writes: nothing cnnlab writes is ever half-written.

Each writer writes to a temporary file in the destination folder, flushes and fsyncs it, then
renames it over the destination (``os.replace`` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest`` atomically.

    Args:
        dest: Final path. Its parent folder is created if needed.

    Yields:
        A path to write to (same folder, same suffix). Removed if the body raises.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; results should be readable like any file
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _atomic_open(dest: str | os.PathLike[str], mode: str, writer: Callable[[IO[Any]], object]) -> Path:
    with atomic_path(dest) as tmp, open(tmp, mode) as fh:
        writer(fh)
    return Path(dest)


def write_bytes(dest: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``dest``."""
    return _atomic_open(dest, "wb", lambda fh: fh.write(data))


def write_text(dest: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``dest``."""
    return _atomic_open(dest, "w", lambda fh: fh.write(text))


def write_json(dest: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Atomically write ``obj`` as JSON to ``dest``."""
    return write_text(dest, json.dumps(obj, indent=indent) + "\n")


def save_torch(dest: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically ``torch.save`` ``obj`` to ``dest``."""
    import torch

    with atomic_path(dest) as tmp:
        torch.save(obj, tmp)
    return Path(dest)


def save_safetensors(
    dest: str | os.PathLike[str], tensors: dict[str, Any], metadata: dict[str, str] | None = None
) -> Path:
    """Atomically write a safetensors file (tensors are made contiguous first)."""
    from safetensors.torch import save_file

    with atomic_path(dest) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    return Path(dest)


def save_figure(dest: str | os.PathLike[str], fig: Any, **kwargs: Any) -> Path:
    """Atomically save a matplotlib figure (format taken from ``dest``'s suffix)."""
    dest = Path(dest)
    kwargs.setdefault("dpi", 120)
    kwargs.setdefault("bbox_inches", "tight")
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format=dest.suffix.lstrip(".") or "png", **kwargs)
    return dest


def ensure_writable_dir(path: str | os.PathLike[str], *, option: str = "--out") -> Path:
    """Create ``path`` if needed and prove it is writable, before any long work starts.

    Raises:
        CnnlabError: naming ``option`` and the fix when the folder cannot be created or written.
    """
    from .errors import CnnlabError

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CnnlabError(
            f"{option} {p}: cannot write there ({exc.strerror or exc}); "
            f"choose a writable folder with {option}"
        ) from None
    return p
