"""One file, one label, one split: links, loops, repeated CSV rows and files under two labels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_data
from cnnlab.data.folders import read_csv_list, scan_folder
from cnnlab.errors import DataError


def _images(folder: Path, n: int, value: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        arr = np.full((12, 12, 3), value, np.uint8)
        arr[0, 0] = i
        paths.append(folder / f"{i}.png")
        Image.fromarray(arr).save(paths[-1])
    return paths


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))


def _identities(paths: list[str] | None) -> set[tuple[int, int]]:
    assert paths is not None
    return {(os.stat(p).st_dev, os.stat(p).st_ino) for p in paths}


def test_class_folder_linked_to_the_root_is_not_a_class(tmp_path: Path) -> None:
    root = tmp_path / "d"
    _images(root / "cat", 4, 10)
    _images(root / "dog", 4, 200)
    os.symlink(".", root / "c")
    os.symlink("..", root / "up")
    fl = scan_folder(root)
    assert fl.classes == ["cat", "dog"] and len(fl.train) == 8
    assert sorted(Path(s.path).name for s in fl.skipped) == ["c", "up"]
    assert all("not a class" in s.reason for s in fl.skipped)
    bundle = load_data(str(root), img_size=8)
    assert bundle.classes == ["cat", "dog"] and len(bundle.train) + len(bundle.val) == 8


def test_split_layout_class_linked_above_is_not_a_class(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for split in ("train", "val"):
        _images(root / split / "cat", 3, 10)
        _images(root / split / "dog", 3, 200)
    os.symlink("..", root / "train" / "all")
    fl = scan_folder(root)
    assert fl.classes == ["cat", "dog"] and len(fl.train) == 6 and fl.val is not None and len(fl.val) == 6


def test_link_loops_inside_a_class_do_not_hang_or_repeat(tmp_path: Path) -> None:
    root = tmp_path / "d"
    _images(root / "cat" / "sub", 3, 10)
    _images(root / "dog", 3, 200)
    os.symlink("..", root / "cat" / "sub" / "loop")  # cat/sub/loop -> cat
    os.symlink("../..", root / "cat" / "sub" / "top")  # -> the data root
    fl = scan_folder(root)
    assert [(p.name, label) for p, label in fl.train] == [(f"{i}.png", 0) for i in range(3)] + [
        (f"{i}.png", 1) for i in range(3)
    ]


def test_linked_class_folder_outside_the_root_is_a_class(tmp_path: Path) -> None:
    _images(tmp_path / "elsewhere" / "dogs", 3, 200)
    root = tmp_path / "d"
    _images(root / "cat", 3, 10)
    os.symlink(tmp_path / "elsewhere" / "dogs", root / "dog")
    assert scan_folder(root).classes == ["cat", "dog"]


def test_same_file_twice_with_one_label_is_used_once(tmp_path: Path) -> None:
    root = tmp_path / "d"
    cats = _images(root / "cat", 4, 10)
    _images(root / "dog", 4, 200)
    os.link(cats[0], root / "cat" / "hardlink.png")
    os.symlink(cats[1], root / "cat" / "symlink.png")
    fl = scan_folder(root)
    assert len(fl.train) == 8
    reasons = {Path(s.path).name: s.reason for s in fl.skipped}
    assert set(reasons) == {"hardlink.png", "symlink.png"}
    assert all("same file, same label" in r for r in reasons.values())


def test_one_file_under_two_labels_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "d"
    cats = _images(root / "cat", 3, 10)
    _images(root / "dog", 3, 200)
    os.symlink(cats[0], root / "dog" / "alias.png")
    os.link(cats[1], root / "dog" / "copy.png")
    with pytest.raises(DataError) as info:
        load_data(str(root), img_size=8)
    msg = str(info.value)
    assert "labelled both 'cat'" in msg and "and 'dog'" in msg and "(and 1 more such files)" in msg
    assert "give each image one label" in msg and "\n" not in msg


def test_a_training_file_is_never_also_in_val(tmp_path: Path) -> None:
    root = tmp_path / "d"
    train_cats = _images(root / "train" / "cat", 3, 10)
    _images(root / "train" / "dog", 3, 200)
    _images(root / "val" / "cat", 1, 10)
    _images(root / "val" / "dog", 1, 200)
    os.link(train_cats[2], root / "val" / "cat" / "leak.png")
    bundle = load_data(str(root), img_size=8)
    assert not _identities(bundle.train.paths) & _identities(bundle.val.paths)
    assert len(bundle.train) == 6 and len(bundle.val) == 2
    [leak] = bundle.skipped
    assert Path(leak.path).name == "leak.png" and "training split" in leak.reason
    os.link(train_cats[1], root / "val" / "dog" / "mislabelled.png")
    with pytest.raises(DataError, match=r"labelled both 'cat'.* and 'dog'"):
        load_data(str(root), img_size=8)


def test_fraction_split_of_deduplicated_files_is_disjoint(tmp_path: Path) -> None:
    root = tmp_path / "d"
    cats = _images(root / "cat", 10, 10)
    _images(root / "dog", 10, 200)
    for i, src in enumerate(cats):
        os.link(src, root / "cat" / f"again{i}.png")  # every cat twice: one copy per side?
    bundle = load_data(str(root), img_size=8, val_split=0.5)
    assert not _identities(bundle.train.paths) & _identities(bundle.val.paths)
    assert len(bundle.train) + len(bundle.val) == 20 and len(bundle.skipped) == 10


def test_csv_repeated_rows_are_used_once_and_listed(tmp_path: Path) -> None:
    _images(tmp_path / "imgs", 6, 10)
    rows = ["path,label"] + [f"imgs/{i}.png,{'red' if i < 3 else 'blue'}" for i in range(6)]
    rows += ["imgs/0.png,red", "./imgs/1.png,red"]  # the same row again; the same file spelt differently
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    fl = read_csv_list(tmp_path / "list.csv")
    assert len(fl.train) == 6 and [Path(p).name for p, _ in fl.train] == [f"{i}.png" for i in range(6)]
    assert [s.reason.startswith("repeat of") for s in fl.skipped] == [True, True]
    bundle = load_data(str(tmp_path / "list.csv"), img_size=8, val_split=0.34)
    assert len(bundle.train) + len(bundle.val) == 6
    assert not _identities(bundle.train.paths) & _identities(bundle.val.paths)
    assert sorted(s["path"] for s in bundle.summary()["skipped"]) == sorted(
        str(tmp_path / p) for p in ("imgs/0.png", "./imgs/1.png")
    )


def test_csv_file_under_two_labels_is_an_error(tmp_path: Path) -> None:
    _images(tmp_path / "imgs", 4, 10)
    rows = ["imgs/0.png,red", "imgs/1.png,red", "imgs/2.png,blue", "imgs/3.png,blue", "imgs/0.png,blue"]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as info:
        read_csv_list(tmp_path / "list.csv")
    msg = str(info.value)
    assert msg.startswith(str(tmp_path / "list.csv")) and "0.png is labelled both 'red' and 'blue'" in msg
