"""Prediction on a folder: ``cnnlab predict RUN FOLDER`` against ImageFolder + DataLoader + ``model.eval()``.

The run is a 1-epoch ``efficientnet_lite0`` (pretrained, offline weights, ``--transfer features``) on
``CNNLAB_DATA_DIR/cats-vs-dogs``; both sides predict the 200 photos of its ``val/`` folder with the same
network and weights (the baseline reads them with :func:`cnnlab.train.load_run`, as ``cnnlab predict``
does), at the run's input size, mean and std, batches of 64, whole process each (a user waits for all
of it), interleaved, medians of ``--repeats``:

* **cnnlab cold**: ``cnnlab predict RUN val/ --json`` with an empty decode cache (``CNNLAB_CACHE_DIR``
  a fresh folder each repeat): the photos are decoded and written to the cache;
* **cnnlab warm**: the same command again: the photos come memory-mapped from the cache;
* **baseline**: a script as the tutorials write it: ``ImageFolder(val, Compose([Resize((H, W)),
  ToTensor(), Normalize(mean, std)]))``, ``DataLoader(batch_size=64)`` (``num_workers=0``),
  ``model.eval()`` and ``torch.inference_mode()``, softmax top-k per image. It has no cache: cold = warm.

Beside the wall times: the baseline's own time after its model is loaded (its loop), the top-1
agreement of the two, and one ``cProfile`` run of the warm command (where its time goes).

Usage:
    CNNLAB_DATA_DIR=/path/to/data python benchmarks/predict.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
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

TARGET = 1.5  # warm cnnlab images/s / baseline images/s

BASELINE = """
import json, sys, time
import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms
from cnnlab.train import load_run

run, folder, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
loaded = load_run(run)  # the same network and weights as `cnnlab predict RUN`
model = loaded.model.eval()
c, h, w = loaded.image_size
t0 = time.perf_counter()
tf = transforms.Compose([transforms.Resize((h, w)), transforms.ToTensor(),
                         transforms.Normalize(loaded.mean, loaded.std)])
ds = datasets.ImageFolder(folder, transform=tf)
out = []
with torch.inference_mode():
    for x, _ in DataLoader(ds, batch_size=batch):
        logits = model(x)
        p = torch.sigmoid(logits).reshape(-1) if logits.shape[1] == 1 else logits.softmax(1)
        out.extend(p.tolist())
loop = time.perf_counter() - t0
json.dump({"loop_s": loop, "size": [c, h, w], "files": [s for s, _ in ds.samples], "probs": out}, sys.stdout)
"""


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CNNLAB_CACHE_DIR": str(cache)}


def _timed(argv: list[str], cache: Path, cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=_env(cache), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed (exit status {proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def _train(data: Path, work: Path) -> Path:
    run = work / "run"
    cmd = [sys.executable, "-m", "cnnlab", "train", "--data", str(data), "--model", "efficientnet_lite0",
           "--pretrained", "--transfer", "features", "--epochs", "1", "--batch-size", "32", "--seed", "0",
           "--out", str(run), "--cache-dir", str(work / "embeddings"), "--no-progress"]  # fmt: skip
    print("training the run folder:", " ".join(cmd[1:]), flush=True)
    _timed(cmd, work / "train-cache", work)
    return run


def _top1(probs: list[Any]) -> list[int]:
    return [int(p > 0.5) if isinstance(p, float) else max(range(len(p)), key=p.__getitem__) for p in probs]


def _profile(argv: list[str], cache: Path, cwd: Path) -> dict[str, float]:
    """Cumulative seconds of the parts of one warm ``cnnlab predict`` run (``python -m cProfile``)."""
    out = cwd / "predict.prof"
    subprocess.run([argv[0], "-m", "cProfile", "-o", str(out), *argv[1:]], cwd=cwd, env=_env(cache),
                   capture_output=True, check=True)  # fmt: skip
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    parts = {
        ("cnnlab/cli.py", "<module>"): "importing the CLI",
        ("torch/__init__.py", "<module>"): "import torch",
        ("cnnlab/_cli/_app.py", "load_source"): "loading the run (its imports, network, weights)",
        ("cnnlab/train/evaluate.py", "predict"): "predict()",
        ("cnnlab/train/evaluate.py", "_logits"): "of it: forward passes",
        ("cnnlab/data/cache.py", "decode_files"): "of it: decode cache lookup + pixels",
    }
    found: dict[str, float] = {}
    for (file, _, func), (_, _, _, ct, _) in stats.items():
        for (suffix, name), label in parts.items():
            if file.endswith(suffix) and func == name:
                found[label] = max(found.get(label, 0.0), ct)
    cum = {"whole process": max(v[3] for v in stats.values())}
    cum.update({label: found[label] for label in parts.values() if label in found})
    return cum


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    data_dir = os.environ.get("CNNLAB_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "cats-vs-dogs" / "val").is_dir():
        sys.exit("set CNNLAB_DATA_DIR to the folder holding cats-vs-dogs/{train,val}")
    data = Path(data_dir) / "cats-vs-dogs"
    val = data / "val"
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = _train(data, work)
        (work / "baseline.py").write_text(BASELINE)
        batch = str(args.batch_size)
        cli = [py, "-m", "cnnlab", "predict", str(run), str(val), "--json", "--batch-size", batch,
               "--top-k", "1"]  # fmt: skip
        base = [py, "baseline.py", str(run), str(val), batch]
        warm_cache = work / "warm-cache"
        _timed(cli, warm_cache, work)  # fills the warm cache (and the OS file cache for both)
        _timed(base, work / "unused", work)
        walls: dict[str, list[float]] = {"cnnlab cold": [], "cnnlab warm": [], "baseline": []}
        loops: list[float] = []
        outputs: dict[str, str] = {}
        for r in range(args.repeats):
            order = list(walls)[r % 3 :] + list(walls)[: r % 3]  # rotate every repeat
            for name in order:
                if name == "baseline":
                    wall, out = _timed(base, work / "unused", work)
                    loops.append(json.loads(out)["loop_s"])
                else:
                    cache = warm_cache if name == "cnnlab warm" else work / f"cold-cache-{r}"
                    wall, out = _timed(cli, cache, work)
                walls[name].append(wall)
                outputs[name] = out
            print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in walls.items()), flush=True)
        profile = _profile(cli, warm_cache, work)
    base_out = json.loads(outputs["baseline"])
    warm_out = json.loads(outputs["cnnlab warm"])
    ours = {Path(p["path"]).resolve(): p["predictions"][0]["class"] for p in warm_out}
    classes = sorted({d.name for d in val.iterdir() if d.is_dir()})
    top1 = _top1(base_out["probs"])
    theirs = {Path(f).resolve(): classes[i] for f, i in zip(base_out["files"], top1, strict=True)}
    agree = sum(ours[k] == theirs[k] for k in theirs) / len(theirs)
    n = len(theirs)
    med = {k: statistics.median(v) for k, v in walls.items()}
    rate = {k: n / v for k, v in med.items()}
    loop = statistics.median(loops)
    img_size = "x".join(str(v) for v in base_out["size"])
    speed = {k: rate[k] / rate["baseline"] for k in ("cnnlab cold", "cnnlab warm")}
    load = os.getloadavg()[0]
    command = f"python benchmarks/predict.py --repeats {args.repeats}"
    doc = {"command": command, "images": n, "repeats": args.repeats, "batch_size": args.batch_size,
           "wall_s": walls, "median_wall_s": med, "images_per_s": rate, "speedup_vs_baseline": speed,
           "baseline_loop_s": loops, "top1_agreement": agree, "target_warm": TARGET,
           "profile_warm_cumulative_s": profile, "load_average_1min_end": load, "run_img_size": img_size}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predict.json").write_text(json.dumps(doc, indent=2) + "\n")
    rows = "\n".join(
        f"| {k} | {med[k]:.2f} | {rate[k]:.1f} | "
        + ("1.00x (cold = warm: no cache) |" if k == "baseline" else f"{speed[k]:.2f}x |")
        for k in walls
    )
    verdict = "met" if speed["cnnlab warm"] >= TARGET else "not met"
    prof = ", ".join(f"{k} {v:.2f} s" for k, v in profile.items())
    md = f"""## predict

`cnnlab predict RUN FOLDER` on the {n} cats-vs-dogs val photos against ImageFolder + DataLoader +
`model.eval()` under `inference_mode` (the same `efficientnet_lite0` run folder: pretrained, 1 epoch
`--transfer features`, input {img_size}; batches of {args.batch_size}; `num_workers=0`). Whole-process
wall time of each (fresh process), {args.repeats} interleaved repeats (medians); cold = an empty decode
cache, warm = the same command again. Command: `{command}`.

| pipeline | median s | images/s | speed-up vs baseline |
|---|---:|---:|---:|
{rows}

**Warm: {speed['cnnlab warm']:.2f}x** the baseline's images/s (target >= {TARGET}x: {verdict}); cold
{speed['cnnlab cold']:.2f}x. Top-1 agreement of the two: {agree:.1%} (both resize with PIL, bilinear).
The baseline's own loop (after its imports and model load, decoding + forward passes) took
{loop:.2f} s of its {med['baseline']:.2f} s.

Where a warm `cnnlab predict` spends its time (one `python -m cProfile` run, cumulative seconds,
profiler overhead included): {prof}.

Load average {load:.1f} at the end (2 cores shared with other work).
"""
    (RESULTS / "predict.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
