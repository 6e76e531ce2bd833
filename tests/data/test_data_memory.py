"""Bounded memory when decoding: a pixel budget checked from the header, shared by decoding threads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab.errors import CnnlabError, DataError
from cnnlab.images import PixelBudget, decode_image, skip_reason

_PEAK_SCRIPT = r"""
import json, resource, sys
from pathlib import Path
from cnnlab.data.cache import decode_files

def peak_mb():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes there, KiB elsewhere

paths = sorted(Path(sys.argv[1]).glob("*.png"))
before = peak_mb()
arr, ok, skipped = decode_files(paths, size=(32, 32), use_cache=False, workers=len(paths))
print(json.dumps({"grew_mb": peak_mb() - before, "ok": ok, "reasons": [s.reason for s in skipped]}))
"""


def _peak(folder: Path, **env: str) -> dict:
    """Decode every PNG of ``folder`` in a fresh process; how much its peak memory grew, and the result."""
    run_env = {**os.environ, "PYTHONPATH": str(Path(cnnlab.__file__).parents[1]), **env}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", _PEAK_SCRIPT, str(folder)],
                          capture_output=True, text=True, env=run_env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _copies(first: Path, n: int) -> None:
    for i in range(1, n):
        shutil.copy(first, first.with_name(f"{i}.png"))


def test_huge_but_tiny_pngs_are_skipped_before_decoding(tmp_path: Path) -> None:
    # 10000 x 10000 pixels in a few KB: decoding each as RGB would take 400 MB (4.4 GB peak for
    # four 12000 x 12000 ones before the budget); the default budget refuses them from the header.
    folder = tmp_path / "huge"
    folder.mkdir()
    Image.new("1", (10_000, 10_000)).save(folder / "0.png")
    assert (folder / "0.png").stat().st_size < 50_000
    _copies(folder / "0.png", 4)
    result = _peak(folder)
    assert result["ok"] == [] and len(result["reasons"]) == 4
    assert all(
        r == "image too large to decode (10000x10000 = 100,000,000 pixels, over CNNLAB_MAX_IMAGE_PIXELS "
        f"{Image.MAX_IMAGE_PIXELS:,})"
        for r in result["reasons"]
    )
    assert result["grew_mb"] < 100, result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tuning makes RSS exact")
def test_threads_share_one_budget(tmp_path: Path) -> None:
    # Six images at the budget, six threads: they decode one at a time, so the peak grows by about one
    # image (3000 x 3000 x 4 bytes = 36 MB in Pillow), not six (about 420 MB without the shared budget).
    folder = tmp_path / "mid"
    folder.mkdir()
    Image.new("RGB", (3000, 3000), (9, 99, 199)).save(folder / "0.png")
    _copies(folder / "0.png", 6)
    # Every big block from mmap, so that freed image memory leaves RSS instead of staying in an arena.
    result = _peak(folder, CNNLAB_MAX_IMAGE_PIXELS="9000000", MALLOC_MMAP_THRESHOLD_="131072")
    assert result["ok"] == list(range(6)) and result["reasons"] == []
    assert result["grew_mb"] < 2 * 36, result


def test_budget_never_exceeded_and_a_big_image_alone_still_runs() -> None:
    budget = PixelBudget(100)
    seen: list[int] = []
    lock = threading.Lock()

    def work(pixels: int) -> None:
        with budget.reserve(pixels):
            with lock:
                seen.append(budget.used)
            time.sleep(0.005)  # overlap the threads (no timing is asserted)

    threads = [threading.Thread(target=work, args=(p,)) for p in [60] * 8 + [30] * 8 + [150]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads) and len(seen) == 17
    assert all(used <= 100 or used == 150 for used in seen), seen
    assert budget.used == 0
    with PixelBudget(None).reserve(10**12):  # no limit: nothing is counted
        pass


def _image(path: Path, w: int, h: int) -> Path:
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path, quality=90)
    return path


def test_env_var_sets_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _image(tmp_path / "x.png", 20, 20)
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(DataError) as info:
        decode_image(p)
    assert str(info.value) == (
        f"{p}: image too large to decode (20x20 = 400 pixels, over CNNLAB_MAX_IMAGE_PIXELS 100); "
        "shrink the file, or raise CNNLAB_MAX_IMAGE_PIXELS if the memory is there"
    )
    reason = "image too large to decode (20x20 = 400 pixels, over CNNLAB_MAX_IMAGE_PIXELS 100)"
    assert skip_reason(info.value) == reason  # what a folder scan lists as the reason it skipped the file
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "400")
    assert decode_image(p).size == (20, 20)
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "0")  # no limit
    assert decode_image(p).size == (20, 20)
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(CnnlabError, match="CNNLAB_MAX_IMAGE_PIXELS='lots': give a whole number") as bad:
        decode_image(p)
    assert not isinstance(bad.value, DataError)  # a setting to fix once, not a file to skip


def test_budget_counts_the_pixels_a_jpeg_draft_decodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = _image(tmp_path / "photo.jpg", 1600, 1200)  # 1.92 MP; drafted to 1/8 = 200 x 150 for a small target
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "100000")
    assert decode_image(p, size=(100, 100)).size == (100, 100)
    with pytest.raises(DataError, match=r"1600x1200 = 1,920,000 pixels"):
        decode_image(p)  # full size: over the budget
