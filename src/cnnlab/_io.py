"""Atomic file writes: nothing cnnlab writes is ever half-written.

Each writer writes to a temporary file in the destination folder, flushes and fsyncs it, then
renames it over the destination (``os.replace`` is atomic on POSIX and Windows). The temporary name,
``.<name>.<host>-<pid>.<random>.tmp<suffix>``, says which process writes it, so that
:func:`remove_orphan_temps` can delete what a killed writer left behind without touching the file of
one still running. A full disk or quota (ENOSPC, EDQUOT) ends every writer with one
:class:`~cnnlab.errors.DiskFullError` line; the previous file is left as it was and the temporary
file is removed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import DiskFullError

#: errno values that mean "no room left": a full file system, or the user's quota.
_DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})

#: A temporary file of :func:`atomic_path`: the writer tag is absent in names of older cnnlab versions;
#: the random part is :func:`tempfile.mkstemp`'s (8 characters).
_TEMP_NAME = re.compile(
    r"^\.(?P<dest>.+?)\.(?:(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp(?:\.[^.]*)?$"
)
#: The checkpoint Lightning's learning-rate finder writes and removes (left behind by a killed run).
_LR_FIND_CKPT = re.compile(r"^\.lr_find_[0-9a-f-]+\.ckpt$")


def _host() -> str:
    """This machine's name, reduced to the characters a temporary name may hold."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def disk_full_errno(exc: BaseException) -> int | None:
    """The errno (ENOSPC or EDQUOT) when ``exc``, or an exception it came from, says the disk is full.

    Args:
        exc: Any exception: an :class:`OSError`, or an error raised from one.

    Returns:
        The errno, or None when the failure is not for lack of space.
    """
    seen: BaseException | None = exc
    for _ in range(8):  # the __cause__/__context__ chain, bounded (it can be circular)
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL:
            return seen.errno
        seen = seen.__cause__ or seen.__context__
    return None


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` is a write that failed for lack of space (see :func:`disk_full_errno`)."""
    return disk_full_errno(exc) is not None


def _new_temp(dest: Path) -> Path:
    """Create an empty temporary file beside ``dest``, named after this process, readable like any file."""
    fd, name = tempfile.mkstemp(
        prefix=f".{dest.name}.{_host()}-{os.getpid()}.", suffix=f".tmp{dest.suffix}", dir=dest.parent
    )
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # mkstemp creates 0600; results should be readable like any file
    return Path(name)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], *, option: str = "--out") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest`` atomically.

    Args:
        dest: Final path. Its parent folder is created if needed.
        option: The command-line option that chose the folder, named in the disk-full message.

    Yields:
        A path to write to (same folder, same suffix). Removed if the body raises.

    Raises:
        DiskFullError: "disk full while writing FILE; free space or choose OPTION elsewhere", when the
            body, the fsync or the rename fails for lack of space (``dest`` keeps its old content).
    """
    dest = Path(dest)
    tmp: Path | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_temp(dest)
        yield tmp
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except Exception as exc:
        code = disk_full_errno(exc)
        if code is None:
            raise
        message = f"disk full while writing {dest}; free space or choose {option} elsewhere"
        raise DiskFullError(message, path=str(dest), errno_code=code) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):  # best effort; remove_orphan_temps gets it on the next start
                tmp.unlink(missing_ok=True)


def _atomic_open(dest: str | os.PathLike[str], mode: str, writer: Callable[[IO[Any]], object]) -> Path:
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(dest) as tmp, open(tmp, mode, encoding=encoding) as fh:
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
    """Atomically ``torch.save`` ``obj`` to ``dest``.

    torch writes through a Python file object, so a full disk surfaces as an OSError with its errno
    (given a path, torch's own writer reports only "unexpected pos").
    """
    import torch

    return _atomic_open(dest, "wb", lambda fh: torch.save(obj, fh))


def save_safetensors(
    dest: str | os.PathLike[str], tensors: dict[str, Any], metadata: dict[str, str] | None = None
) -> Path:
    """Atomically write a safetensors file (tensors are made contiguous first).

    The file is serialised in memory and written like any other: safetensors' own ``save_file``
    writes a second temporary file (``.tmpXXXXXX``) that a kill would leave behind and reports a full
    disk without an errno.
    """
    from safetensors.torch import save

    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    return write_bytes(dest, data)


def save_figure(dest: str | os.PathLike[str], fig: Any, **kwargs: Any) -> Path:
    """Atomically save a matplotlib figure (format taken from ``dest``'s suffix)."""
    dest = Path(dest)
    kwargs.setdefault("dpi", 120)
    kwargs.setdefault("bbox_inches", "tight")
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format=dest.suffix.lstrip(".") or "png", **kwargs)
    return dest


def _writer_alive(pid: int) -> bool | None:
    """Whether process ``pid`` of this machine runs; None where that cannot be asked (Windows)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_orphan_temps(
    root: str | os.PathLike[str], *, min_age_s: float = 60.0, recursive: bool = True
) -> list[Path]:
    """Delete the temporary files that killed writers left in ``root``; call it when a command starts.

    Only names :func:`atomic_path` makes are considered, and the learning-rate finder's
    ``.lr_find_*.ckpt`` (by age only). One written by a process of this machine is
    removed once that process has ended, at once; one whose writer cannot be checked (another machine
    on a shared folder, a cnnlab version that did not put the pid in the name, Windows) only when it
    has not been modified for ``min_age_s`` seconds. A live writer's file is never removed. Symbolic
    links are not followed (a link loop cannot hang it); a file that cannot be removed is left for a
    later start.

    Args:
        root: Folder to clean (a run folder, the decode cache). A missing folder is not an error.
        min_age_s: Age from which a temporary file of an unknown writer counts as abandoned.
        recursive: Also clean sub-folders.

    Returns:
        The removed files.
    """
    host, now = _host(), time.time()
    removed: list[Path] = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            match = _TEMP_NAME.match(name)
            if match is None and not _LR_FIND_CKPT.match(name):
                continue
            path = Path(folder, name)
            try:
                st = path.lstat()
                if not stat.S_ISREG(st.st_mode):
                    continue
                ours = match is not None and match["host"] == host
                alive = _writer_alive(int(match["pid"])) if ours and match is not None else None
                if alive is False or (alive is None and now - st.st_mtime >= min_age_s):
                    path.unlink()
                    removed.append(path)
            except OSError:  # gone already (another process cleaning), or not ours to remove
                continue
        if not recursive:
            break
    return removed


def ensure_writable_dir(path: str | os.PathLike[str], *, option: str = "--out", fix: str = "") -> Path:
    """Create ``path`` if needed and prove it is writable, before any long work starts.

    Args:
        path: The folder.
        option: The option that chose it, named in the message.
        fix: What to do when it is not writable (default: choose a writable folder with ``option``).

    Raises:
        CnnlabError: naming ``option`` and the fix when the folder cannot be created or written
            (a :class:`DiskFullError` when the disk is full).
    """
    from .errors import CnnlabError

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        code = disk_full_errno(exc)
        if code is not None:
            message = f"{option} {p}: disk full; free space or choose {option} elsewhere"
            raise DiskFullError(message, path=str(p), errno_code=code) from None
        raise CnnlabError(
            f"{option} {p}: cannot write there ({exc.strerror or exc}); "
            f"{fix or f'choose a writable folder with {option}'}"
        ) from None
    return p


def output_dir() -> Path:
    """The one folder where commands write without ``--out`` and without a run folder to write into:
    ``$CNNLAB_OUT_DIR``, default ``~/cnnlab`` (never the current directory); created, and proven writable.

    Raises:
        CnnlabError: naming ``CNNLAB_OUT_DIR`` when that folder cannot be created or written.
    """
    root = os.environ.get("CNNLAB_OUT_DIR")
    folder = Path(root).expanduser() if root else Path.home() / "cnnlab"
    option = "CNNLAB_OUT_DIR" if root else "the default output folder"  # the user gave no --out: say which
    fix = "set CNNLAB_OUT_DIR to a writable folder, or give --out"
    return ensure_writable_dir(folder, option=option, fix=fix)


def default_output(filename: str, source: str | None = None, *, label: str | None = None) -> Path:
    """Where a command's ``filename`` goes without ``--out``: into the run folder ``source`` when it is one,
    else into :func:`output_dir` (``explain-efficientnet_lite0.png`` for ``label`` efficientnet_lite0).

    Args:
        filename: The file's name (``explain.png``) or, for a folder of outputs, the folder's (``data``).
        source: The run folder (or other model source) the command was given, if any.
        label: What the output is of (a model or data name), added to the name outside a run folder.

    Returns:
        The path (inside a run folder, or in :func:`output_dir`, which is created).
    """
    if source is not None and Path(source).is_dir():
        return Path(source) / filename
    if label:
        stem, dot, suffix = filename.partition(".")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(label).name or label).strip("-") or "out"
        filename = f"{stem}-{safe}{dot}{suffix}"
    return output_dir() / filename
