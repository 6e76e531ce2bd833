"""1-D convnets on the UCR archive: cnnlab's FCN and ResNet beside their published accuracies.

For each dataset (GunPoint, ItalyPowerDemand) and model (``fcn1d``, ``resnet1d``) this trains three seeds
exactly as ``cnnlab train --data ucr:NAME --model M --seed S`` does (the defaults for series: 150 epochs,
batch 16, Adam 1e-3 with a cosine decay), and records the test accuracy (the archive's TEST split is the
validation split) of the LAST epoch (no checkpoint chosen on the test split) and of the exported
best-validation-loss epoch (chosen on the test split, so optimistic: shown for reference only), their
medians over the seeds, and the wall time.

Published accuracies beside them (only those verified against their source are printed as published):

* Wang, Yan & Oates (2017), "Time series classification from scratch with deep neural networks: a strong
  baseline", Table of test error rates on 44 UCR datasets (best of their runs);
* Fawaz et al. (2019), "Deep learning for time series classification: a review", mean accuracy over 10
  runs on the UCR/UEA archive 2015 (their companion results, github.com/hfawaz/dl-4-tsc).

Usage:
    python benchmarks/series.py [--seeds 0 1 2] [--datasets GunPoint ItalyPowerDemand]
                                [--models fcn1d resnet1d]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
RESULTS = HERE / "results"
RUNS = ROOT / "runs" / "bench-series"

#: Published test accuracies: {(dataset, model): (accuracy, source)}; only numbers checked against their
#: source go here (see the module docstring and BENCHMARKS.md for those that could not be checked).
FAWAZ = ("Fawaz et al. 2019, mean of 10 runs; github.com/hfawaz/dl-4-tsc README and "
         "results/results-uea-avg-std.csv")
PUBLISHED: dict[tuple[str, str], tuple[float, str]] = {
    ("GunPoint", "fcn1d"): (1.000, FAWAZ),
    ("GunPoint", "resnet1d"): (0.991, FAWAZ),
    ("ItalyPowerDemand", "fcn1d"): (0.961, FAWAZ),
    ("ItalyPowerDemand", "resnet1d"): (0.963, FAWAZ),
}


def _one(dataset: str, model: str, seed: int) -> dict[str, Any]:
    import torch

    from cnnlab.train import fit, load_run
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.evaluate import evaluate, load_eval_data

    out = RUNS / f"{model}-{dataset}-s{seed}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig(data=f"ucr:{dataset}", model=model, seed=seed, out=str(out), progress=False)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    result = fit(cfg)
    seconds = time.perf_counter() - t0
    load = (load0, os.getloadavg()[0])
    run = load_run(out)
    best = evaluate(run, load_eval_data(run)[0])
    return {
        "seed": seed,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.learning_rate,
        "last_epoch_accuracy": float(result.metrics[-1]["val_acc"]),
        "best_checkpoint_accuracy": best.accuracy,
        "best_epoch": result.best_epoch,
        "seconds": round(seconds, 1),
        "load": f"{min(load):.1f}-{max(load):.1f}",  # the 1-minute load average at start and end
        "threads": torch.get_num_threads(),
    }


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "## series",
        "",
        "1-D convnets on the UCR/UEA archive (`python benchmarks/series.py`): `cnnlab train --data ucr:NAME "
        "--model M --seed S` for seeds 0, 1, 2 with the series defaults (150 epochs, batch 16, Adam 1e-3 "
        "with a cosine decay); "
        "the accuracy is on the archive's TEST split (cnnlab's validation split). *Last epoch* is the model "
        "after the last epoch (nothing chosen on the test split); *best checkpoint* is the exported "
        "lowest-validation-loss epoch, chosen on the test split and so optimistic. Medians of the seeds. "
        "The machine has 2 CPU cores; *load* is the 1-minute load average at the start and end of each "
        "seed's "
        "run (above 2, other jobs shared the cores and the times are longer than alone), *threads* torch's "
        "(`OMP_NUM_THREADS=1` where 1).",
        "",
        "| dataset | model | seeds | last epoch (median) | per seed | best checkpoint (median) | published "
        "| time / run | load | threads |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["model"])):
        pub = PUBLISHED.get((r["dataset"], r["model"]))
        pub_text = f"{pub[0]:.1%} [1]" if pub else "not verified"
        seeds = ", ".join(f"{s['last_epoch_accuracy']:.1%}" for s in r["seeds"])
        lines.append(
            f"| {r['dataset']} | {r['model']} | {len(r['seeds'])} | {r['last_epoch_median']:.1%} | {seeds} | "
            f"{r['best_checkpoint_median']:.1%} | {pub_text} | {r['seconds_median']:.0f} s | "
            f"{', '.join(sorted({s.get('load', '?') for s in r['seeds']}))} | "
            f"{', '.join(sorted({str(s.get('threads', '?')) for s in r['seeds']}))} |"
        )
    ran = {(r["dataset"], r["model"]) for r in rows}
    missing = [f"{m} on {d} (published {acc:.1%} [1])" for (d, m), (acc, _) in PUBLISHED.items()
               if (d, m) not in ran]
    if missing:
        lines += ["", f"Not run in this session (the shared machine's time ran out): {'; '.join(missing)}; "
                  "`python benchmarks/series.py --models resnet1d` runs them."]
    lines += [
        "",
        f"[1] {FAWAZ}: \"the averaged accuracy over 10 runs of each implemented model on the UCR/UEA "
        "archive\" (FCN and ResNet as Wang et al. define them; the archive's train/test split). Wang, Yan & "
        "Oates (2017) "
        "publish test error rates for the same models in their Table, but their values could not be checked "
        "against the paper from this machine, so they are not quoted here.",
    ]
    return "\n".join(lines) + "\n"


def rewrite() -> None:
    """Rebuild ``series.md`` from ``series.json`` (the table's text, without training anything)."""
    from cnnlab._io import write_text

    write_text(RESULTS / "series.md", _markdown(json.loads((RESULTS / "series.json").read_text())))


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["GunPoint", "ItalyPowerDemand"])
    parser.add_argument("--models", nargs="+", default=["fcn1d", "resnet1d"])
    args = parser.parse_args()
    from cnnlab._io import write_text

    RESULTS.mkdir(exist_ok=True)
    saved = RESULTS / "series.json"  # rows of earlier runs are kept: `--models resnet1d` adds its rows
    rows: list[dict[str, Any]] = json.loads(saved.read_text()) if saved.exists() else []
    for dataset in args.datasets:
        for model in args.models:
            seeds: list[dict[str, Any]] = []
            for s in args.seeds:  # written after every seed: a run cut short still records what finished
                seeds.append(_one(dataset, model, s))
                row = {
                    "dataset": dataset,
                    "model": model,
                    "seeds": seeds,
                    "last_epoch_median": statistics.median(s["last_epoch_accuracy"] for s in seeds),
                    "best_checkpoint_median": statistics.median(s["best_checkpoint_accuracy"] for s in seeds),
                    "seconds_median": statistics.median(s["seconds"] for s in seeds),
                }
                rows = [r for r in rows if (r["dataset"], r["model"]) != (dataset, model)] + [row]
                print(json.dumps(row), flush=True)
                write_text(RESULTS / "series.json", json.dumps(rows, indent=1) + "\n")
                write_text(RESULTS / "series.md", _markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
