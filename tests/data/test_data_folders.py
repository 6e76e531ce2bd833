"""Image folders and CSV lists: layouts, awkward files, splits, the decode cache and CLI errors."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cnnlab.data import load_data
from cnnlab.errors import DataError

GOOD = ("plain", "rgba", "cmyk", "sixteen", "gray", "exif_rot", "palette")
BAD = ("truncated", "empty", "text")


def _write_class(
    folder: Path, n: int, colour: tuple[int, int, int], size: tuple[int, int] = (30, 40)
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = np.zeros((*size, 3), np.uint8)
        arr[...] = colour
        arr[0, 0] = i  # distinct files
        Image.fromarray(arr).save(folder / f"img{i:03d}.png")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(d))
    return d


def test_awkward_folder_loads_good_and_lists_bad(tmp_path: Path, cache: Path, make_awkward: Callable) -> None:
    root = tmp_path / "ds"
    files = make_awkward(root / "train" / "odd")
    _write_class(root / "train" / "plain", 3, (0, 200, 0))
    _write_class(root / "val" / "odd", 1, (200, 0, 0))
    _write_class(root / "val" / "plain", 1, (0, 200, 0))
    bundle = load_data(str(root), img_size=48)
    assert bundle.classes == ["odd", "plain"] and bundle.image_shape == (3, 48, 48)
    assert sorted(Path(s.path).name for s in bundle.skipped) == sorted(files[b].name for b in BAD)
    reasons = {Path(s.path).stem: s.reason for s in bundle.skipped}
    assert (
        "truncated" in reasons["truncated"]
        and "empty" in reasons["empty"]
        and "not an image" in reasons["text"]
    )
    assert len(bundle.train) == len(GOOD) + 3
    paths = bundle.train.paths
    assert paths is not None
    for name in GOOD:
        img = bundle.train.images[paths.index(str(files[name]))].int()
        top, bottom = img[:, 8, 24], img[:, 40, 24]
        if name in ("gray", "sixteen"):
            assert top[0] == top[1] == top[2], name
        else:
            assert top[0] > 170 and bottom[2] > 170 and top[2] < 60 and bottom[0] < 60, (name, top, bottom)
    summary = bundle.summary()
    assert summary["splits"] == {"train": 10, "val": 2} and len(summary["skipped"]) == 3


def test_cats_vs_dogs(data_dir: Path, cache: Path, tmp_path: Path) -> None:
    from cnnlab.cli import app

    result = CliRunner().invoke(
        app, ["data", str(data_dir / "cats-vs-dogs"), "--json", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["classes"] == ["cat", "dog"] and doc["splits"] == {"train": 800, "val": 200}
    assert doc["image_shape"] == [3, 150, 150] and doc["skipped"] == []


def test_class_folders_split_stratified_and_deterministic(tmp_path: Path, cache: Path) -> None:
    _write_class(tmp_path / "d" / "a", 20, (255, 0, 0))
    _write_class(tmp_path / "d" / "b", 10, (0, 0, 255))
    _write_class(tmp_path / "d" / "a" / ".ipynb_checkpoints", 4, (9, 9, 9))  # hidden: ignored
    (tmp_path / "d" / "a" / "notes.txt").write_text("not an image extension: ignored")
    a = load_data(str(tmp_path / "d"), img_size=16, val_split=0.3)
    assert a.train.class_counts() == [14, 7] and a.val.class_counts() == [6, 3]
    assert a.train.paths is not None and a.val.paths is not None
    assert not set(a.train.paths) & set(a.val.paths)
    b = load_data(str(tmp_path / "d"), img_size=16, val_split=0.3)
    assert a.val.paths == b.val.paths
    c = load_data(str(tmp_path / "d"), img_size=16, val_split=0.3, seed=1)
    assert a.val.paths != c.val.paths
    assert a.train.images[a.train.labels == 0][:, 0].float().mean() > 250


def test_decode_cache_hit_and_invalidation(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_class(tmp_path / "d" / "a", 4, (255, 0, 0))
    _write_class(tmp_path / "d" / "b", 4, (0, 0, 255))
    calls: list[int] = []
    first = load_data(str(tmp_path / "d"), img_size=16, progress=lambda d, n: calls.append(d))
    assert calls and any(cache.glob("decoded-*.npy"))

    import cnnlab.data.cache as cache_mod

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded a file on a cache hit")

    with monkeypatch.context() as m:
        m.setattr(cache_mod, "decode_image", no_decoding)
        again = load_data(str(tmp_path / "d"), img_size=16)
    assert torch.equal(again.train.images, first.train.images)
    # change one file (new content, new mtime): the split holding it is decoded again
    target = Path(first.train.paths[0])  # type: ignore[index]
    Image.fromarray(np.full((30, 40, 3), 7, np.uint8)).save(target)
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    calls.clear()
    changed = load_data(str(tmp_path / "d"), img_size=16, progress=lambda d, n: calls.append(d))
    assert calls, "a changed file must invalidate the cache"
    assert int(changed.train.images[0].float().mean().round()) == 7
    # a different target size is a different cache entry
    assert load_data(str(tmp_path / "d"), img_size=20).image_shape == (3, 20, 20)


def test_decode_cache_is_bounded_and_drops_the_least_recently_used(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_class(tmp_path / "d" / "a", 4, (255, 0, 0))
    _write_class(tmp_path / "d" / "b", 4, (0, 0, 255))
    keys: dict[int, set[str]] = {}
    for i, size in enumerate((16, 20, 24)):  # entries used in this order (mtimes set to make it exact)
        load_data(str(tmp_path / "d"), img_size=size)
        keys[size] = {p.stem for p in cache.glob("decoded-*.json")} - set().union(*keys.values())
        for stem in keys[size]:
            os.utime(cache / f"{stem}.json", (1_000_000 + i, 1_000_000 + i))
    load_data(str(tmp_path / "d"), img_size=16)  # a hit: 16 becomes the most recently used

    def nbytes(stems: set[str]) -> int:
        return sum((cache / f"{s}{ext}").stat().st_size for s in stems for ext in (".npy", ".json"))

    bound = nbytes(keys[16]) + nbytes(keys[20]) + nbytes(keys[24]) - 1  # one byte too small already
    monkeypatch.setenv("CNNLAB_CACHE_MAX_GB", str(bound / 1e9))
    load_data(str(tmp_path / "d"), img_size=12)  # a new, smaller entry: pruning must make room
    left = {p.stem for p in cache.glob("decoded-*.json")}
    deleted = set().union(*keys.values()) - left
    assert deleted and deleted <= keys[20], deleted  # only the least recently used (size 20) went
    assert keys[16] <= left and keys[24] <= left
    assert {p.stem for p in cache.glob("decoded-*.npy")} == left  # whole entries, no orphans
    assert sum(p.stat().st_size for p in cache.glob("decoded-*")) <= bound
    monkeypatch.setenv("CNNLAB_CACHE_MAX_GB", "lots")
    with pytest.raises(DataError, match="CNNLAB_CACHE_MAX_GB"):
        load_data(str(tmp_path / "d"), img_size=8)


def test_csv_list(tmp_path: Path, cache: Path) -> None:
    _write_class(tmp_path / "imgs" / "x", 5, (255, 0, 0))
    _write_class(tmp_path / "imgs" / "y", 5, (0, 255, 0))
    rows = ["path,label"] + [f"imgs/x/img{i:03d}.png,red" for i in range(5)]
    rows += [f"imgs/y/img{i:03d}.png,green" for i in range(5)] + ["imgs/missing.png,red"]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    bundle = load_data(str(tmp_path / "list.csv"), img_size=16, val_split=0.2)
    assert bundle.classes == ["green", "red"]
    assert bundle.summary()["splits"] == {"train": 8, "val": 2}
    assert [Path(s.path).name for s in bundle.skipped] == ["missing.png"]
    assert bundle.train.images[bundle.train.labels == 1][:, 0].float().mean() > 250  # red is red


def test_limit_is_stratified(tmp_path: Path, cache: Path) -> None:
    _write_class(tmp_path / "d" / "a", 10, (255, 0, 0))
    _write_class(tmp_path / "d" / "b", 10, (0, 0, 255))
    bundle = load_data(str(tmp_path / "d"), img_size=16, limit=4)
    assert bundle.train.class_counts() == [2, 2] and len(bundle.val) == 4


def _cli_error(args: list[str]) -> str:
    from cnnlab.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in result.output
    return err


def test_cli_errors_one_line_exit_2(tmp_path: Path, cache: Path) -> None:
    out = ["--out", str(tmp_path / "out")]
    assert "does not exist" in _cli_error(["data", str(tmp_path / "missing"), *out])
    (tmp_path / "empty").mkdir()
    assert "no class sub-folders" in _cli_error(["data", str(tmp_path / "empty"), *out])
    _write_class(tmp_path / "one" / "cat", 3, (1, 2, 3))
    msg = _cli_error(["data", str(tmp_path / "one"), *out])
    assert "only one class" in msg and "'cat'" in msg
    msg = _cli_error(["data", "imagenet-ish", *out])
    assert "unknown data SPEC" in msg and all(name in msg for name in ("sample", "mnist", "fashion-mnist"))
    assert "--val-split" in _cli_error(["data", "sample", "--val-split", "1.5", *out])


def test_loose_images_without_class_folders(tmp_path: Path) -> None:
    _write_class(tmp_path / "flat", 3, (1, 2, 3))  # images directly in the folder
    with pytest.raises(DataError, match="no class sub-folders"):
        load_data(str(tmp_path / "flat"))
