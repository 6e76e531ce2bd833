"""cnnlab._io: a full disk ends every writer in one line and loses nothing; killed writers' leftovers go."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab import _io
from cnnlab.errors import CnnlabError, DiskFullError
from cnnlab.images import read_image, save_image


def _figure() -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 2))
    fig.gca().plot([0, 1], [1, 0])
    return fig


#: name -> (file name, write-it function); each writes something different on every call.
WRITERS: dict[str, tuple[str, Callable[[Path, int], object]]] = {
    "text": ("notes.txt", lambda p, i: _io.write_text(p, f"version {i}\n")),
    "json": ("metrics.json", lambda p, i: _io.write_json(p, {"version": i})),
    "bytes": ("blob.bin", lambda p, i: _io.write_bytes(p, bytes([i]) * 100)),
    "torch": ("last.ckpt", lambda p, i: _io.save_torch(p, {"w": torch.full((50,), float(i))})),
    "safetensors": ("model.safetensors", lambda p, i: _io.save_safetensors(p, {"w": torch.full((50,), i)})),
    "figure": ("curves.png", lambda p, i: _io.save_figure(p, _figure(), dpi=20 + i)),
    "image": ("sample.png", lambda p, i: save_image(p, torch.full((3, 8, 8), i, dtype=torch.uint8))),
}


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("name", list(WRITERS))
def test_disk_full_keeps_the_previous_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    filename, write = WRITERS[name]
    dest = tmp_path / "run" / filename
    write(dest, 1)
    before = dest.read_bytes()
    monkeypatch.setattr(os, "fsync", _no_space)  # the last write call every writer goes through
    with pytest.raises(DiskFullError) as info:
        write(dest, 2)
    assert str(info.value) == f"disk full while writing {dest}; free space or choose --out elsewhere"
    assert isinstance(info.value, CnnlabError) and isinstance(info.value, OSError)
    assert info.value.errno == errno.ENOSPC
    assert dest.read_bytes() == before
    assert [p.name for p in dest.parent.iterdir()] == [filename]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_while_the_body_writes(tmp_path: Path, code: int) -> None:
    dest = tmp_path / "config.yaml"
    dest.write_text("good: 1\n")
    with pytest.raises(DiskFullError, match=r"disk full while writing .*config\.yaml") as info:  # noqa: SIM117
        with _io.atomic_path(dest) as tmp:
            tmp.write_text("half a conf")
            raise OSError(code, os.strerror(code))
    assert info.value.errno == code
    assert dest.read_text() == "good: 1\n" and [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_other_errors_pass_through_unchanged(tmp_path: Path) -> None:
    with pytest.raises(PermissionError), _io.atomic_path(tmp_path / "x.json"):
        raise PermissionError(errno.EACCES, "denied")
    assert list(tmp_path.iterdir()) == []


def test_disk_full_found_in_wrapped_errors() -> None:
    try:
        try:
            raise OSError(errno.EDQUOT, "quota")
        except OSError as exc:
            raise RuntimeError("writer failed") from exc
    except RuntimeError as wrapped:
        assert _io.disk_full_errno(wrapped) == errno.EDQUOT
    assert _io.disk_full_errno(RuntimeError("unexpected pos 576 vs 534")) is None
    assert not _io.is_disk_full(OSError(errno.EACCES, "denied"))


def _can_mount_tmpfs() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


_FULL_DISK_SCRIPT = r"""
import json, os, sys, warnings
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, sys.argv[3])
from test_data_io import WRITERS
from cnnlab.data.cache import decode_files
from cnnlab.errors import DiskFullError

mnt, images = Path(sys.argv[1]), sorted(Path(sys.argv[2]).glob("*.png"))
report = {}
for name, (filename, write) in WRITERS.items():
    write(mnt / name / filename, 1)
(mnt / "cache").mkdir()
with open(mnt / "filler", "wb", buffering=0) as fh:  # fill the file system to the last byte
    try:
        while True:
            fh.write(b"x" * 4096)
    except OSError:
        pass
for name, (filename, write) in WRITERS.items():
    dest = mnt / name / filename
    before = dest.read_bytes()
    try:
        write(dest, 2)
        report[name] = "written?"
    except DiskFullError as exc:
        report[name] = {"message": str(exc), "intact": dest.read_bytes() == before,
                        "files": sorted(p.name for p in dest.parent.iterdir())}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    arr, ok, skipped = decode_files(images, size=(8, 8), cache_dir=mnt / "cache")
ref, _, _ = decode_files(images, size=(8, 8), use_cache=False)
report["cache"] = {"equal": bool(np.array_equal(arr, ref)), "ok": ok,
                   "warnings": [str(w.message) for w in caught], "files": os.listdir(mnt / "cache")}
print(json.dumps(report))
"""


def test_real_full_filesystem(tmp_path: Path) -> None:
    """Every writer on a real, full tmpfs (mounted in a user namespace, no root needed)."""
    if not _can_mount_tmpfs():
        pytest.skip("a real full file system needs unprivileged user namespaces (unshare -rm)")
    mnt, images = tmp_path / "mnt", tmp_path / "images"
    mnt.mkdir()
    for i in range(2):
        save_image(images / f"{i}.png", torch.full((3, 12, 12), 40 * i, dtype=torch.uint8))
    script = tmp_path / "full_disk.py"
    script.write_text(_FULL_DISK_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(cnnlab.__file__).parents[1]), "MPLBACKEND": "Agg"}
    shell = 'mount -t tmpfs -o size=256k tmpfs "$1" && exec "$4" "$5" "$1" "$2" "$3"'
    cmd = ["unshare", "-rm", "sh", "-c", shell, "sh", str(mnt), str(images), str(Path(__file__).parent),
           sys.executable, str(script)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (filename, _) in WRITERS.items():
        got = report[name]
        dest = mnt / name / filename
        assert got["message"] == f"disk full while writing {dest}; free space or choose --out elsewhere", name
        assert got["intact"] and got["files"] == [filename], (name, got)
    cache = report["cache"]
    assert cache["equal"] and cache["ok"] == [0, 1] and cache["files"] == []
    assert len(cache["warnings"]) == 1
    assert "disk is full; continuing without the cache" in cache["warnings"][0]


def test_temp_names_carry_host_and_pid(tmp_path: Path) -> None:
    with _io.atomic_path(tmp_path / "best.ckpt") as tmp:
        match = _io._TEMP_NAME.match(tmp.name)
        assert match is not None and match["dest"] == "best.ckpt"
        assert int(match["pid"]) == os.getpid() and match["host"] == _io._host()
        assert tmp.suffix == ".ckpt"  # writers that pick a format from the suffix still can
        tmp.write_bytes(b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["best.ckpt"]


_WRITER_SCRIPT = """
import sys, time
from cnnlab._io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"partial")
    print(tmp, flush=True)
    time.sleep(600)
"""


def _start_writer(dest: Path) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "PYTHONPATH": str(Path(cnnlab.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER_SCRIPT, str(dest)], stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_kill_9_leftover_removed_but_a_live_writers_temp_kept(tmp_path: Path) -> None:
    run = tmp_path / "run"
    killed, killed_tmp = _start_writer(run / "checkpoints" / "best.ckpt")
    live, live_tmp = _start_writer(run / "metrics.csv")
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
        assert killed_tmp.is_file() and live_tmp.is_file()
        assert _io.remove_orphan_temps(run) == [killed_tmp]
        assert not killed_tmp.exists() and not (run / "checkpoints" / "best.ckpt").exists()
        assert live_tmp.read_bytes() == b"partial"  # the concurrent writer is still at work
        assert _io.remove_orphan_temps(run, min_age_s=0) == []  # its age does not matter: it is alive
    finally:
        live.kill()
        live.wait(timeout=60)
    assert _io.remove_orphan_temps(run) == [live_tmp]


def test_orphans_of_unknown_writers_go_by_age_and_other_files_stay(tmp_path: Path) -> None:
    root = tmp_path / "run"
    (root / "sub").mkdir(parents=True)
    os.symlink("..", root / "sub" / "loop")  # a link loop must not hang the walk
    old = time.time() - 3600
    names = {
        "legacy_old": root / ".best.ckpt.k2j4_9xq.tmp.ckpt",  # older cnnlab: no writer in the name
        "legacy_new": root / ".last.ckpt.ab12cd34.tmp.ckpt",
        "other_host_old": root / "sub" / ".m.json.node7-4242.abcdefgh.tmp.json",
        "other_host_new": root / ".m.json.node7-4242.hgfedcba.tmp.json",
        "user_tmp": root / ".notes.tmp",
        "user_file": root / "results.tmp.json",
        "finder_old": root / ".lr_find_0f3c2a1e-7d4b-4c1a-9e2f-1234567890ab.ckpt",  # a killed --lr find
        "finder_new": root / ".lr_find_9a8b7c6d-5e4f-4a3b-2c1d-0123456789ab.ckpt",
        "user_ckpt": root / "lr_find_mine.ckpt",
    }
    for key, path in names.items():
        path.write_text(key)
        if key.endswith("old") or key.startswith("user"):  # (user_ckpt: old too, and kept)
            os.utime(path, (old, old))
    removed = set(_io.remove_orphan_temps(root))
    assert removed == {names["legacy_old"], names["other_host_old"], names["finder_old"]}
    assert all(p.exists() for k, p in names.items() if p not in removed)
    # not recursive: only the top folder
    nested = root / "sub" / ".x.json.node7-1.zzzzzzzz.tmp.json"
    nested.write_text("x")
    os.utime(nested, (old, old))
    assert _io.remove_orphan_temps(root, recursive=False) == []
    assert _io.remove_orphan_temps(tmp_path / "missing") == []


def test_decode_cache_setup_removes_orphans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnlab.data.cache import decode_files

    cache = tmp_path / "cache"
    cache.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    orphan = cache / f".decoded-abc.npy.{_io._host()}-{dead.pid}.a1b2c3d4.tmp.npy"
    orphan.write_bytes(b"half an array")
    save_image(tmp_path / "a.png", torch.zeros((3, 4, 4), dtype=torch.uint8))
    arr, ok, _ = decode_files([tmp_path / "a.png"], size=(4, 4), cache_dir=cache)
    assert ok == [0] and arr.shape == (1, 3, 4, 4)
    assert not orphan.exists() and sorted(p.suffix for p in cache.iterdir()) == [".json", ".npy"]


def test_ensure_writable_dir_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "mkstemp", _no_space)
    with pytest.raises(DiskFullError, match=r"--out .*: disk full; free space or choose --out elsewhere"):
        _io.ensure_writable_dir(tmp_path / "out")


def test_written_files_read_back(tmp_path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    for name, (filename, write) in WRITERS.items():
        dest = tmp_path / name / filename
        write(dest, 3)
        assert dest.stat().st_mode & 0o777 == 0o666 & ~umask, name  # like any file, not mkstemp's 0600
    assert json.loads((tmp_path / "json" / "metrics.json").read_text()) == {"version": 3}
    assert torch.load(tmp_path / "torch" / "last.ckpt", weights_only=True)["w"][0] == 3.0
    assert int(read_image(tmp_path / "image" / "sample.png")[0, 0, 0]) == 3
