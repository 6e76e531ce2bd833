"""Accuracy of cnnlab training on real data (figures for BENCHMARKS.md, not tests).

Sections (each runs ``cnnlab.train.fit`` exactly as ``cnnlab train`` does, then ``evaluate``):

* ``fashion``: ``mnist_cnn`` on Fashion-MNIST, 60k train / 10k test (the val split is the official
  test split), 10 epochs, Adam 1e-3, batch 64. Target: >= 91% test accuracy within 10 epochs.
* ``mnist``: ``mnist_cnn`` on mnist-10k split 80/20 (stratified, seed 0), 10 epochs, one-cycle schedule
  peaking at 3e-3 (``--mnist-lr``/``--mnist-schedule``; constant Adam 1e-3 stayed at 97.9%). Target: >= 98%.
* ``cats``: the course's cats-vs-dogs story on ``CNNLAB_DATA_DIR/cats-vs-dogs`` (800 train / 200 val) at
  150x150: ``cats_cnn`` without augmentation (expected to overfit: validation loss turns up while
  training loss keeps falling) against ``cats_cnn_dropout`` with ``--augment standard`` (expected not
  to), 80 epochs each, Adam 3e-4, batch 16. Both learning-curve figures are copied to
  ``benchmarks/results/``.

Results are written after every section (``benchmarks/results/accuracy.json`` and ``accuracy.md``), so
a run cut short still records what finished. Run folders go to ``runs/bench-accuracy/``.

Usage:
    CNNLAB_DATA_DIR=/path/to/data python benchmarks/accuracy.py [fashion mnist cats] [--cats-epochs 80]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
RESULTS = HERE / "results"
RUNS = ROOT / "runs" / "bench-accuracy"
SECTIONS = ("fashion", "mnist", "cats")


def _train(name: str, *, resume: bool = False, **options: Any) -> dict[str, Any]:
    """Train one configuration and evaluate its best checkpoint on the validation/test split."""
    from cnnlab.report.plots import overfitting_onset
    from cnnlab.train import fit, load_run
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.evaluate import evaluate, load_eval_data

    out = RUNS / name
    resume = resume and (out / "checkpoints" / "last.ckpt").is_file()
    if not resume:
        shutil.rmtree(out, ignore_errors=True)
    # --resume continues a run (possibly to more epochs) from its last checkpoint
    cfg = TrainConfig(out=str(out), progress=False, resume=resume, **options)
    t0 = time.perf_counter()
    result = fit(cfg)
    seconds = time.perf_counter() - t0
    run = load_run(out)
    dataset, _ = load_eval_data(run)
    ev = evaluate(run, dataset)
    rows = result.metrics
    onset = overfitting_onset([r["val_loss"] for r in rows], [r["train_loss"] for r in rows])
    summary = {
        "config": {
            k: v
            for k, v in cfg.to_dict().items()
            if k
            in (
                "data",
                "model",
                "epochs",
                "batch_size",
                "lr",
                "schedule",
                "optimizer",
                "augment",
                "img_size",
                "seed",
            )
        },
        "epochs": rows,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "max_val_acc": max(r["val_acc"] for r in rows),
        "last_val_acc": rows[-1]["val_acc"],
        "eval_accuracy_best_checkpoint": ev.accuracy,
        "overfitting_onset_epoch": None if onset is None else rows[onset]["epoch"],
        "seconds": round(seconds, 1),
        "run_dir": str(out.relative_to(ROOT)),
    }
    print(
        f"{name}: max val acc {summary['max_val_acc']:.4f}, last {summary['last_val_acc']:.4f}, "
        f"best-checkpoint acc {ev.accuracy:.4f}, onset {summary['overfitting_onset_epoch']}, "
        f"{seconds:.0f}s",
        flush=True,
    )
    return summary


def _onset_epoch(rows: list[dict[str, Any]]) -> int | None:
    """1-based epoch of the overfitting onset (the marker of curves.png), or None."""
    from cnnlab.report.plots import overfitting_onset

    onset = overfitting_onset([r["val_loss"] for r in rows], [r["train_loss"] for r in rows])
    return None if onset is None else int(rows[onset]["epoch"])


def _redraw_curves(results: dict[str, Any]) -> None:
    """Draw results/<key>_curves.png again from the recorded epochs (after a change of the onset rule)."""
    from cnnlab._io import save_figure
    from cnnlab.report.plots import curves_figure

    for key in ("cats_noaug", "cats_aug"):
        if key in results:
            r = results[key]
            title = f"{r['config']['model']} on cats-vs-dogs, augment {r['config']['augment']}"
            save_figure(RESULTS / f"{key}_curves.png", curves_figure(r["epochs"], title=title))


def _gap(rows: list[dict[str, Any]], last: int = 5) -> float:
    """Mean validation-minus-training loss over the last epochs (the generalisation gap)."""
    tail = rows[-last:]
    return sum(r["val_loss"] - r["train_loss"] for r in tail) / len(tail)


def _write(results: dict[str, Any], command: str) -> None:
    from cnnlab._io import write_json, write_text

    for key in ("cats_noaug", "cats_aug"):  # with the current rule (--render redraws the curves too)
        if key in results:
            results[key]["overfitting_onset_epoch"] = _onset_epoch(results[key]["epochs"])
    write_json(RESULTS / "accuracy.json", results)
    md = [
        "## accuracy",
        "",
        "Each run's command is listed below it (2 CPU cores shared with other jobs, one torch thread per "
        "run; times are wall clock).",
        "",
    ]
    targets = {
        "fashion": ("mnist_cnn, Fashion-MNIST 60k/10k test", 0.91),
        "mnist": ("mnist_cnn, mnist-10k 80/20", 0.98),
    }
    commands: list[str] = []
    if any(k in results for k in targets):
        md += [
            "| run | epochs | max test/val acc | last epoch acc | best-val-loss ckpt acc | target | time |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for key, (label, target) in targets.items():
            if key in results:
                r = results[key]
                ok = "met" if r["max_val_acc"] >= target else "NOT met"
                md.append(
                    f"| {label} | {len(r['epochs'])} | {r['max_val_acc']:.2%} | {r['last_val_acc']:.2%} | "
                    f"{r['eval_accuracy_best_checkpoint']:.2%} | >= {target:.0%} ({ok}) | "
                    f"{r['seconds']:.0f}s |"
                )
                commands.append(f"- {label}: `{r.get('command', command)}`")
        md.append("")
    cats = {k: v for k, v in results.items() if k in ("cats_noaug", "cats_aug")}
    if cats:
        md += [
            "Cats vs dogs (800 train / 200 val, 150x150): the course's overfitting story.",
            "",
            "| run | epochs | best epoch (val loss) | overfitting onset | max val acc | last val acc | "
            "train acc (last) | val - train loss (last 5 epochs) | curves |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for key, r in cats.items():
            onset = r["overfitting_onset_epoch"]
            md.append(
                f"| {r['config']['model']}, augment {r['config']['augment']} | {len(r['epochs'])} | "
                f"{r['best_epoch']} | {onset if onset is not None else 'none'} | {r['max_val_acc']:.2%} | "
                f"{r['last_val_acc']:.2%} | {r['epochs'][-1]['train_acc']:.2%} | {_gap(r['epochs']):+.3f} | "
                f"`benchmarks/results/{key}_curves.png` |"
            )
            commands.append(f"- cats {key}: `{r.get('command', command)}`")
        md.append("")
        md.append(
            "Overfitting onset (`cnnlab.report.plots.overfitting_onset`, the marker in curves.png) = the "
            "epoch of minimum of the smoothed validation loss (centred moving average, 5 epochs from 30 "
            "epochs on) when the last 2 epochs both lie more than 5% above that minimum while training "
            "loss kept falling."
        )
    notes = results.get("notes", [])
    md += ["", "Commands:", *commands, *([""] + [f"Note: {n}" for n in notes] if notes else [])]
    write_text(RESULTS / "accuracy.md", "\n".join(md).rstrip() + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs for fashion/mnist")
    parser.add_argument("--cats-epochs", type=int, default=80)
    parser.add_argument("--lr", type=float, default=1e-3, help="fashion learning rate")
    parser.add_argument("--schedule", default="none", help="fashion lr schedule (none|onecycle|cosine)")
    parser.add_argument("--mnist-lr", type=float, default=3e-3, help="mnist (peak) learning rate")
    parser.add_argument("--mnist-schedule", default="onecycle", help="mnist lr schedule")
    parser.add_argument(
        "--render", action="store_true", help="only redraw accuracy.md and the cats curves from accuracy.json"
    )
    parser.add_argument("--resume", action="store_true", help="continue existing runs from last.ckpt")
    parser.add_argument("--cats-lr", type=float, default=3e-4)
    parser.add_argument("--cats-batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--only", nargs="*", default=[], help="cats: only these runs (cats_noaug, cats_aug)")
    args = parser.parse_args()
    data = os.environ.get("CNNLAB_DATA_DIR")
    if not data:
        sys.exit("set CNNLAB_DATA_DIR to the real-data folder")
    import logging
    import warnings

    import torch

    if args.threads:  # on a shared, oversubscribed machine one thread per process avoids OpenMP stalls
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    sections = args.sections or list(SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    command = "python benchmarks/accuracy.py " + " ".join(sys.argv[1:])
    path = RESULTS / "accuracy.json"
    if args.render:
        results = json.loads(path.read_text())
        _redraw_curves(results)
        _write(results, command)
        return 0

    def record(key: str, summary: dict[str, Any]) -> None:
        # Re-read before writing: sections may run as separate processes at the same time.
        results = json.loads(path.read_text()) if path.is_file() else {}
        results[key] = {**summary, "command": command}
        _write(results, command)

    common = {"data_dir": data, "batch_size": 64, "seed": 0}
    if "fashion" in sections:
        record(
            "fashion",
            _train(
                "fashion",
                data="fashion-mnist",
                model="mnist_cnn",
                epochs=args.epochs,
                lr=args.lr,
                schedule=args.schedule,
                **common,
            ),
        )
    if "mnist" in sections:
        record(
            "mnist",
            _train(
                "mnist",
                data="mnist",
                model="mnist_cnn",
                epochs=args.epochs,
                val_split=0.2,
                lr=args.mnist_lr,
                schedule=args.mnist_schedule,
                **common,
            ),
        )
    if "cats" in sections:
        folder = str(Path(data) / "cats-vs-dogs")
        cats = {
            "data": folder,
            "img_size": 150,
            "epochs": args.cats_epochs,
            "batch_size": args.cats_batch,
            "lr": args.cats_lr,
            "seed": 0,
        }
        runs = (("cats_noaug", "cats_cnn", "none"), ("cats_aug", "cats_cnn_dropout", "standard"))
        for key, model, augment in runs:
            if args.only and key not in args.only:
                continue
            summary = _train(key, model=model, augment=augment, resume=args.resume, **cats)
            shutil.copyfile(RUNS / key / "curves.png", RESULTS / f"{key}_curves.png")
            record(key, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
