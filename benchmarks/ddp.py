"""DDP on the CPU: ``cnnlab train --devices 2 --strategy ddp`` against ``--devices 1`` on Fashion-MNIST.

The same command (``mnist_cnn``, ``--epochs``, batch 64 per process, Adam 1e-3, seed 0, ``--accelerator
cpu``) once with one process and once with two DDP processes (gloo), each in a fresh process, repeats
interleaved; the figures are the medians over the repeats of the run's own ``timing.csv`` (seconds of an
epoch: training + validation) and ``metrics.csv`` (validation accuracy of the last epoch on the 10k test
images). Under DDP each of the two processes trains on half of the 60k images per epoch (the data
module shards by rank), so an epoch is half the optimizer steps at twice the global batch (128).

Usage:
    CNNLAB_DATA_DIR=/path/to/data python benchmarks/ddp.py [--repeats 3] [--epochs 1]
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

CASES = {"1 process": ["--devices", "1"], "2 processes (ddp)": ["--devices", "2", "--strategy", "ddp"]}


def command(case: str, epochs: int, out: Path) -> list[str]:
    """The `cnnlab train` command of one case (only --devices/--strategy differ)."""
    return ["cnnlab", "train", "--data", "fashion-mnist", "--model", "mnist_cnn", "--epochs", str(epochs),
            "--batch-size", "64", "--lr", "0.001", "--seed", "0", "--accelerator", "cpu", "--no-progress",
            "--out", str(out), *CASES[case]]  # fmt: skip


def _rows(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def run(case: str, epochs: int, out: Path) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = command(case, epochs, out)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cnnlab", *cmd[1:]], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    timing, metrics = _rows(out / "timing.csv"), _rows(out / "metrics.csv")
    return {"wall_s": wall, "epoch_s": [t["seconds"] for t in timing],
            "train_images_per_s": [t["train_images_per_s"] for t in timing],
            "val_acc": [m["val_acc"] for m in metrics]}  # fmt: skip


def main() -> int:
    from cnnlab._io import write_json, write_text

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    if not os.environ.get("CNNLAB_DATA_DIR"):
        sys.exit("set CNNLAB_DATA_DIR to the folder holding fashion-mnist/")
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            order = list(CASES)[r % 2 :] + list(CASES)[: r % 2]
            for case in order:
                runs[case].append(run(case, args.epochs, Path(tmp) / "run"))
            print(f"repeat {r + 1}: " + ", ".join(f"{c} {v[-1]['epoch_s']} s, acc {v[-1]['val_acc'][-1]:.4f}"
                                                  for c, v in runs.items()), flush=True)
    med = {
        c: {
            "epoch_s": statistics.median(statistics.median(x["epoch_s"]) for x in v),
            "wall_s": statistics.median(x["wall_s"] for x in v),
            "train_images_per_s": statistics.median(statistics.median(x["train_images_per_s"]) for x in v),
            "val_acc": statistics.median(x["val_acc"][-1] for x in v),
        }
        for c, v in runs.items()
    }
    one, two = med["1 process"], med["2 processes (ddp)"]
    load = os.getloadavg()[0]
    cmdline = f"python benchmarks/ddp.py --repeats {args.repeats} --epochs {args.epochs}"
    write_json(RESULTS / "ddp.json", {"command": cmdline, "runs": runs, "median": med, "cpus": os.cpu_count(),
                                      "load_average_1min_end": load})  # fmt: skip
    rows = "\n".join(
        f"| {c} | `{' '.join(CASES[c])}` | {m['epoch_s']:.1f} | {m['train_images_per_s']:,.0f} | "
        f"{m['wall_s']:.1f} | {m['val_acc']:.2%} |"
        for c, m in med.items()
    )
    md = f"""## ddp

`cnnlab train --data fashion-mnist --model mnist_cnn --epochs {args.epochs} --batch-size 64 --accelerator cpu`
with `--devices 1` and with `--devices 2 --strategy ddp` (gloo, one process per device, each shard half
the 60k training images; validation on the 10k test images), {args.repeats} interleaved repeats (medians),
{os.cpu_count()} CPU cores. Epoch seconds and images/s from the run's `timing.csv`, accuracy from its
`metrics.csv` (last epoch). Command: `{cmdline}`.

| run | options | epoch s | train images/s | whole process s | val acc |
|---|---|---:|---:|---:|---:|
{rows}

Two DDP processes against one: epoch time {two['epoch_s'] / one['epoch_s']:.2f}x, validation accuracy
{(two['val_acc'] - one['val_acc']) * 100:+.2f} points (half the optimizer steps per epoch at twice the
global batch). Both runs have the same {os.cpu_count()} cores: DDP here splits them between two
processes rather than adding compute; it is there for machines with more devices or several nodes
(README: `--num-nodes`). Load average {load:.1f} at the end (cores shared with other work).
"""
    write_text(RESULTS / "ddp.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
