"""Scale: peak memory and epoch time of ``cnnlab train`` as a JPEG folder grows from 1k to 16k images.

Generated folders (two classes, smooth seeded colour fields with noise, 224x224 JPEG, quality 85) of
``--sizes`` images; for each, in fresh processes:

* **cold**: ``cnnlab train`` with an empty decode cache (``CNNLAB_CACHE_DIR`` a new folder): the photos
  are decoded once, straight into the cache file, then 1 epoch;
* **warm**: the same command again, ``--warm-epochs`` epochs: the pixels come from the cache file (pread
  per batch), never decoded;
* **over the bound** (the first size only): cold again with ``CNNLAB_CACHE_MAX_GB`` below the folder's
  decoded size: it must train, streaming (decoding every batch from the files) with one notice, and
  leave the cache within the bound.

Peak RSS is the child's ``ru_maxrss`` (``os.wait4``); seconds per epoch come from the run's
``timing.csv`` (training + validation of one epoch; warm: the median over its epochs). The network is
deliberately cheap (``conv:8:3:stride=4 relu maxpool:4``, 224 px input, batch 64) so that the data
layer's cost, which these targets are about, is what grows.

Targets (issue 15, item 6): peak RSS grows by < 200 MB from the smallest to the largest folder, warm
seconds per image stay within 20% (linear epoch time), and the over-the-bound folder trains.

Usage:
    python benchmarks/scale.py [--sizes 1000 4000 16000] [--warm-epochs 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT / "src"))

MODEL = "conv:8:3:stride=4 relu maxpool:4"
SIZE = 224
MB = 1024 * 1024


def generate(folder: Path, n: int) -> Path:
    """``n`` distinct 224x224 JPEGs in two class folders (kept: a later run with the same --work reuses)."""
    import numpy as np
    from PIL import Image

    done = folder / ".complete"
    if done.is_file():
        return folder
    rng = np.random.default_rng(n)
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        smooth = Image.fromarray(coarse).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
        field = np.asarray(smooth, dtype=np.int16)
        noise = rng.integers(-12, 13, field.shape, dtype=np.int16)
        pixels = np.clip(field + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / ("a", "b")[i % 2] / f"{i:05d}.jpg", quality=85)
    done.write_text(str(n))
    return folder


def _train(folder: Path, out: Path, cache: Path, epochs: int, max_gb: float | None = None) -> dict[str, Any]:
    """One ``cnnlab train`` process: wall seconds, peak RSS, epoch seconds, the cache-bound notice."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "cnnlab", "train", "--data", str(folder), "--model", MODEL, "--img-size",
           str(SIZE), "--epochs", str(epochs), "--batch-size", "64", "--seed", "0", "--no-progress",
           "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CNNLAB_CACHE_DIR": str(cache),
           "PYTHONWARNINGS": "ignore"}  # fmt: skip
    if max_gb is not None:
        env["CNNLAB_CACHE_MAX_GB"] = str(max_gb)
    err = out.parent / f"{out.name}.stderr"
    start = time.perf_counter()
    with open(err, "w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=fh)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = err.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{stderr[-3000:]}")
    with open(out / "timing.csv", newline="") as fh:
        epochs_s = [float(row["seconds"]) for row in csv.DictReader(fh)]
    cache_bytes = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) if cache.exists() else 0
    notes = [ln for ln in stderr.splitlines() if "over the decode cache bound" in ln]
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "epoch_s": epochs_s,
            "cache_bytes": cache_bytes, "notices": notes}  # fmt: skip


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--warm-epochs", type=int, default=3)
    parser.add_argument("--work", type=Path, help="keep the generated folders here (default: a temp dir)")
    args = parser.parse_args()
    tmp = None if args.work else tempfile.TemporaryDirectory()
    work = args.work or Path(tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict[str, Any]] = {}
    over: dict[str, Any] = {}
    try:
        for n in args.sizes:
            t0 = time.perf_counter()
            folder = generate(work / f"jpeg-{n}", n)
            print(f"{n} images ready ({time.perf_counter() - t0:.0f} s)", flush=True)
            cache = work / f"cache-{n}"
            shutil.rmtree(cache, ignore_errors=True)
            cold = _train(folder, work / f"run-{n}", cache, 1)
            warm = _train(folder, work / f"run-{n}", cache, args.warm_epochs)
            rows[n] = {"cold": cold, "warm": warm}
            print(f"{n}: cold {cold['wall_s']:.1f} s, {cold['peak_rss_mb']:.0f} MB; "
                  f"warm epochs {warm['epoch_s']}, {warm['peak_rss_mb']:.0f} MB", flush=True)
            shutil.rmtree(cache, ignore_errors=True)
            if not over:
                decoded = n * 3 * SIZE * SIZE
                bound_gb = round(decoded / 2 / 1e9, 4)  # half of what the folder decodes to
                over_cache = work / "cache-over"
                shutil.rmtree(over_cache, ignore_errors=True)
                over = {"images": n, "decoded_mb": decoded / 1e6, "bound_gb": bound_gb,
                        **_train(folder, work / "run-over", over_cache, 1, max_gb=bound_gb)}  # fmt: skip
                shutil.rmtree(over_cache, ignore_errors=True)
                print(f"over the bound: {over['wall_s']:.1f} s, notices {over['notices']}", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    write(args, rows, over)
    return 0


def write(args: argparse.Namespace, rows: dict[int, dict[str, Any]], over: dict[str, Any]) -> None:
    """``benchmarks/results/scale.{json,md}``."""
    from cnnlab._io import write_json, write_text

    small, big = min(rows), max(rows)
    per_image = {n: statistics.median(r["warm"]["epoch_s"]) / n for n, r in rows.items()}
    growth = {k: rows[big][k]["peak_rss_mb"] - rows[small][k]["peak_rss_mb"] for k in ("cold", "warm")}
    linear = per_image[big] / per_image[small]
    load = os.getloadavg()[0]
    command = "python benchmarks/scale.py " + " ".join(
        [f"--sizes {' '.join(map(str, args.sizes))}", f"--warm-epochs {args.warm_epochs}"]
    )
    ok_rss = max(growth.values()) < 200
    ok_lin = abs(linear - 1) <= 0.2
    ok_over = bool(over) and len(over["notices"]) == 1 and over["cache_bytes"] <= over["bound_gb"] * 1e9
    write_json(RESULTS / "scale.json", {
        "command": command, "model": MODEL, "img_size": SIZE,
        "runs": {str(n): r for n, r in rows.items()},
        "warm_seconds_per_image": {str(n): v for n, v in per_image.items()}, "rss_growth_mb": growth,
        "warm_per_image_ratio_largest_smallest": linear, "over_the_bound": over,
        "load_average_1min_end": load,
    })  # fmt: skip
    table = "\n".join(
        f"| {n:,} | {n * 3 * SIZE * SIZE / 1e6:,.0f} | {r['cold']['wall_s']:.1f} | "
        f"{r['cold']['epoch_s'][0]:.2f} | "
        f"{r['cold']['peak_rss_mb']:,.0f} | {statistics.median(r['warm']['epoch_s']):.2f} | "
        f"{per_image[n] * 1e3:.2f} | {r['warm']['peak_rss_mb']:,.0f} |"
        for n, r in sorted(rows.items())
    )
    verdict = {True: "met", False: "not met"}
    over_md = (
        f"Over the bound: the {over['images']:,}-image folder ({over['decoded_mb']:,.0f} MB decoded) with "
        f"`CNNLAB_CACHE_MAX_GB={over['bound_gb']}` trained 1 epoch in {over['epoch_s'][0]:.2f} s "
        f"({over['wall_s']:.1f} s whole process, peak RSS {over['peak_rss_mb']:,.0f} MB), "
        f"{len(over['notices'])} notice (`{over['notices'][0] if over['notices'] else ''}`), cache left "
        f"at {over['cache_bytes'] / 1e6:.1f} MB: {verdict[ok_over]}."
        if over else "Over the bound: not run."
    )
    md = f"""## scale

`cnnlab train` on generated JPEG folders (two classes, 224x224, val split 0.2), model `{MODEL}` at
{SIZE} px, batch 64: cheap on purpose, so the data layer is what grows. Each cell is one fresh process
(cold: an empty decode cache, 1 epoch; warm: the same command again, {args.warm_epochs} epochs, median
epoch). Epoch seconds are from the run's `timing.csv` (training + validation). Command: `{command}`.

| images | decoded MB | cold process s | cold epoch s | cold peak RSS MB | warm epoch s | warm ms / image \
| warm peak RSS MB |
|---:|---:|---:|---:|---:|---:|---:|---:|
{table}

- Peak RSS growth {small:,} -> {big:,} images: cold {growth['cold']:+,.0f} MB, warm {growth['warm']:+,.0f} MB
  (target < 200 MB: {verdict[ok_rss]}).
- Warm time per image at {big:,} / at {small:,}: {linear:.2f}x (target within 20%: {verdict[ok_lin]}).
- {over_md}

One process per cell, not medians of interleaved repeats (a 16k cold run decodes 2.4 GB); load average
{load:.1f} at the end (2 cores shared with other work).
"""
    write_text(RESULTS / "scale.md", md)
    print(md)


if __name__ == "__main__":
    raise SystemExit(main())
