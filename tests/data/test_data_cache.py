"""The decode cache never fails a load: damaged entries are rebuilt, a full disk only costs the cache."""

from __future__ import annotations

import errno
import io
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import load_data


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for cls, colour in (("a", (250, 0, 0)), ("b", (0, 0, 250))):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for i in range(5):
            arr = np.full((20, 24, 3), colour, np.uint8)
            arr[0, 0] = i
            Image.fromarray(arr).save(tmp_path / "d" / cls / f"{i}.png")
    return tmp_path / "d"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _replace(path: Path, data: bytes) -> None:
    """Give ``path`` new content as a new file (rewriting a memory-mapped file in place is a SIGBUS)."""
    spoilt = path.with_name("spoilt")
    spoilt.write_bytes(data)
    os.replace(spoilt, path)


def _truncate(path: Path) -> None:
    _replace(path, path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    _replace(path, np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())


def _wrong_metadata(path: Path) -> None:
    _replace(path, json.dumps({"ok": "everything", "skipped": []}).encode())


def _too_few_rows(path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.load(path)[:-1])  # a valid array that does not match its metadata
    _replace(path, buf.getvalue())


DAMAGE: dict[str, tuple[str, Callable[[Path], None]]] = {
    "truncated array": (".npy", _truncate),
    "garbage array": (".npy", _garbage),
    "empty array": (".npy", lambda p: _replace(p, b"")),
    "array of the wrong shape": (".npy", _too_few_rows),
    "truncated metadata": (".json", _truncate),
    "garbage metadata": (".json", _garbage),
    "metadata of the wrong type": (".json", _wrong_metadata),
    "array missing": (".npy", lambda p: p.unlink()),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_entry_is_dropped_and_rebuilt_with_one_warning(
    folder: Path, cache: Path, damage: str
) -> None:
    first = load_data(str(folder), img_size=16)
    suffix, spoil = DAMAGE[damage]
    for path in cache.glob(f"decoded-*{suffix}"):
        spoil(path)
    expected = r"decode cache entry .* is damaged .*; decoding the files again"
    with pytest.warns(UserWarning, match=expected) as rec:
        again = load_data(str(folder), img_size=16)
    damaged = [w for w in rec if "damaged" in str(w.message)]
    assert len(damaged) == 2 and all("\n" not in str(w.message) for w in damaged)  # one per split
    assert torch.equal(again.train.images, first.train.images)
    assert torch.equal(again.val.images, first.val.images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt: the next load is a clean hit
        third = load_data(str(folder), img_size=16)
    assert torch.equal(third.train.images, first.train.images)
    assert len(list(cache.glob("decoded-*.npy"))) == len(list(cache.glob("decoded-*.json"))) == 2


def test_damaged_entry_from_the_cli_is_a_warning_not_a_traceback(
    folder: Path, cache: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    args = [sys.executable, "-m", "cnnlab", "data", str(folder), "--json", "--img-size", "16",
            "--out", str(tmp_path / "out")]
    env = {**os.environ, "CNNLAB_CACHE_DIR": str(cache)}
    assert subprocess.run(args, capture_output=True, env=env, timeout=300).returncode == 0
    for path in cache.glob("decoded-*.npy"):
        _truncate(path)
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "is damaged (" in result.stderr
    assert json.loads(result.stdout)["splits"] == {"train": 8, "val": 2}


def test_without_its_cache_a_folder_is_held_in_ram_and_checked_against_the_memory_budget(
    folder: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnlab.errors import CnnlabError

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    monkeypatch.setenv("CNNLAB_MAX_MEMORY_GB", "0.000001")  # 1 KiB: less than 8 images of 3x16x16
    with warnings.catch_warnings(), pytest.raises(CnnlabError, match="over the memory budget") as info:
        warnings.simplefilter("ignore")
        load_data(str(folder), img_size=16)
    assert "in memory" in str(info.value) and "CNNLAB_MAX_MEMORY_GB=1" in str(info.value)


def test_full_disk_loses_only_the_cache(
    folder: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = load_data(str(folder), img_size=16, use_cache=False)

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # what a user sees: the same warning is shown once
        bundle = load_data(str(folder), img_size=16)
    messages = [str(w.message) for w in caught if "decode cache" in str(w.message)]
    assert len(messages) == 1, messages
    assert "the disk is full; continuing without the cache" in messages[0]
    assert "CNNLAB_CACHE_DIR" in messages[0]
    assert torch.equal(bundle.train.images, reference.train.images)
    assert torch.equal(bundle.val.images, reference.val.images)
    assert not cache.exists() or list(cache.iterdir()) == []  # no temp file, no lone array
