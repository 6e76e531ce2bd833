"""Transfer learning on small datasets: features / partial / full / scratch from one `cnnlab train` command.

For each dataset (``CNNLAB_DATA_DIR/cats-vs-dogs``: 800 train / 200 val; ``CNNLAB_DATA_DIR/imagenette``:
10 classes, 80/20 per class) it runs the same command with a different ``--transfer``::

    cnnlab train --data DIR --model efficientnet_lite0 --pretrained --transfer MODE --epochs 3 ...
    cnnlab train --data DIR --model cats_cnn --transfer scratch --img-size 150 ...

and reads the run folders back (``metrics.csv``, ``timing.csv``, ``run.json``). The embedding cache
(acceptance 4) is timed side by side on the cats data: computing the embeddings (cache miss) plus the
first head epoch against the later head epochs, and a cache hit against a miss (medians of repeats).

Usage:
    python benchmarks/transfer.py                       # everything (CPU: ~15-30 min)
    python benchmarks/transfer.py --datasets cats-vs-dogs --modes features,partial
    python benchmarks/transfer.py --limit 40 --epochs 1 # smoke run

Writes ``benchmarks/results/transfer.json`` and ``benchmarks/results/transfer.md`` after every run, so
a cut-short benchmark still records what finished.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
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

MODEL = "efficientnet_lite0"
SCRATCH_MODEL = "cats_cnn"
DATASETS = ["cats-vs-dogs", "imagenette"]
MODES = ["features", "partial", "full", "scratch"]
PRIORITY = ["features", "partial", "scratch", "full"]  # run order: cheap and targeted first
TARGETS = {("cats-vs-dogs", "features"): 0.95, ("cats-vs-dogs", "partial"): 0.96}


def _read_csv(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def command(data: Path, mode: str, args: argparse.Namespace, out: Path, cache: Path) -> list[str]:
    """The `cnnlab train` command of one mode (only --transfer differs; scratch: model, size, lr, epochs)."""
    cmd = ["cnnlab", "train", "--data", str(data), "--transfer", mode, "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--seed", "0", "--out", str(out),
           "--cache-dir", str(cache), "--no-progress"]
    epochs = {"scratch": args.scratch_epochs, "full": args.full_epochs}.get(mode, args.epochs)
    cmd[cmd.index("--epochs") + 1] = str(epochs)
    if mode == "scratch":
        # Adam 1e-3 leaves cats_cnn at chance for many epochs (benchmarks/accuracy.py); give it its lr
        cmd[cmd.index("--lr") + 1] = str(args.scratch_lr)
        cmd += ["--model", SCRATCH_MODEL, "--img-size", "150"]
    else:
        cmd += ["--model", MODEL, "--pretrained"]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    return cmd


def run_mode(data: Path, mode: str, args: argparse.Namespace, runs: Path, cache: Path) -> dict[str, Any]:
    out = runs / f"{data.name}-{mode}"
    cmd = command(data, mode, args, out, cache)
    if (out / "config.yaml").exists():  # this benchmark's own run of an earlier call (--runs-dir reused)
        cmd.append("--overwrite")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cnnlab", *cmd[1:]], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    wall = time.perf_counter() - t0
    row: dict[str, Any] = {"dataset": data.name, "mode": mode, "command": shlex.join(cmd), "wall_s": wall,
                           "returncode": proc.returncode}
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return row
    metrics = _read_csv(out / "metrics.csv")
    timing = _read_csv(out / "timing.csv")
    info = json.loads((out / "run.json").read_text())
    row.update(
        val_acc=[m["val_acc"] for m in metrics],
        best_val_acc=max(m["val_acc"] for m in metrics),
        last_val_acc=metrics[-1]["val_acc"],
        epoch_seconds=[t["seconds"] for t in timing],
        params=info.get("params", {}),
        model=SCRATCH_MODEL if mode == "scratch" else MODEL,
    )
    target = TARGETS.get((data.name, mode))
    if target is not None:
        within = [m["val_acc"] for m in metrics[:3]]
        row["target"] = target
        row["meets_target"] = bool(within) and max(within) >= target
    return row


def cache_timing(data: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Embedding cache, side by side: first `features` epoch (embeddings computed + one head epoch) vs
    the later head epochs on the cached embeddings, and a cache hit vs a miss (medians of repeats).

    Done in-process with the same pieces ``fit`` uses (compute_embeddings, embedding_datamodule,
    EmbeddingHead, ClassifierModule, a Lightning Trainer), on ``--cache-limit`` images per split.
    """
    import lightning as L

    from cnnlab.data import load_data
    from cnnlab.models import create_model
    from cnnlab.models.surgery import configure_head
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.module import ClassifierModule
    from cnnlab.transfer.embeddings import compute_embeddings
    from cnnlab.transfer.on_embeddings import EmbeddingHead, embedding_datamodule
    from cnnlab.transfer.policy import FreezePolicy

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.t0 = time.perf_counter()

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.seconds.append(time.perf_counter() - self.t0)

    bundle = load_data(str(data), img_size=224, grayscale=False, limit=args.cache_limit)
    n = len(bundle.classes)
    cfg = TrainConfig(data=str(data), model=MODEL, pretrained=True, transfer="features", epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, progress=False)
    firsts, laters, miss, hit = [], [], [], []
    for _ in range(args.repeats):
        model = create_model(MODEL, pretrained=True)
        pcfg = model.pretrained_cfg
        configure_head(model, num_classes=n)
        policy = FreezePolicy.from_config(cfg)
        policy.apply(model)
        with tempfile.TemporaryDirectory() as tmp:
            kw = {"mean": pcfg.mean, "std": pcfg.std, "batch_size": args.batch_size, "cache_dir": tmp,
                  "key_parts": {"model": MODEL}}
            t0 = time.perf_counter()
            train = compute_embeddings(model, bundle.train, **kw)
            val = compute_embeddings(model, bundle.val, **kw)
            miss.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            again = [compute_embeddings(model, split, **kw) for split in (bundle.train, bundle.val)]
            hit.append(time.perf_counter() - t0)
            assert all(e.cache_hit for e in again)
        timer = Timer()
        module = ClassifierModule(EmbeddingHead(model), num_classes=n, config=cfg,
                                  param_groups=lambda _, m=model, p=policy: p.param_groups(m, lr=cfg.lr))
        trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, logger=False,
                            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                            num_sanity_val_steps=0, callbacks=[timer])
        trainer.fit(module, datamodule=embedding_datamodule(train, val, batch_size=args.batch_size))
        firsts.append(miss[-1] + timer.seconds[0])
        laters.append(statistics.median(timer.seconds[1:]))
    first, later = statistics.median(firsts), statistics.median(laters)
    return {"images": len(bundle.train) + len(bundle.val), "repeats": args.repeats,
            "miss_s": statistics.median(miss), "hit_s": statistics.median(hit),
            "hit_speedup": statistics.median(miss) / statistics.median(hit),
            "first_epoch_s": first, "later_epoch_s": later, "epoch_ratio": first / later,
            "first_runs": firsts, "later_runs": laters}


def _loads(report: dict[str, Any]) -> str:
    loads = [r["load_average_1min"] for r in report["runs"] if "load_average_1min" in r]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "not recorded"


def markdown(report: dict[str, Any]) -> str:
    lines = ["## transfer", "",
             "Transfer learning with `efficientnet_lite0` (pretrained, offline weights) on small datasets: "
             "the same `cnnlab train` command with a different `--transfer` (scratch: `cats_cnn`, 150x150, "
             "lr 3e-4). "
             "Validation accuracy per epoch; the targets are acceptance 3 of the transfer issue. Seconds are "
             "wall time on the 2 CPU cores, possibly shared with other work (1-minute load average at the "
             f"end of the runs: {_loads(report)}): compare them only within one table.", "",
             f"Command: `{report['command']}`", "",
             "| dataset | mode | model | trainable / total params | val acc per epoch | best | target | "
             "s/epoch (median) |", "|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        if r.get("returncode"):
            lines.append(f"| {r['dataset']} | {r['mode']} | | | failed: {r.get('error', '')} | | | |")
            continue
        p = r.get("params", {})
        accs = ", ".join(f"{a:.1%}" for a in r["val_acc"])
        target = f">= {r['target']:.0%} {'met' if r['meets_target'] else 'NOT met'}" if "target" in r else ""
        secs = statistics.median(r["epoch_seconds"]) if r["epoch_seconds"] else float("nan")
        lines.append(f"| {r['dataset']} | {r['mode']} | {r['model']} | {p.get('trainable', 0):,} / "
                     f"{p.get('total', 0):,} | {accs} | {r['best_val_acc']:.1%} | {target} | {secs:.1f} |")
    c = report.get("cache")
    if c:
        lines += ["", f"Embedding cache ({c['images']} images, medians of {c['repeats']} repeats): computing "
                  f"the embeddings {c['miss_s']:.1f} s, reading them from the cache {c['hit_s']:.2f} s "
                  f"({c['hit_speedup']:.0f}x)."]
        if "epoch_ratio" in c:
            lines.append(f"First `features` epoch (embeddings + head epoch) {c['first_epoch_s']:.1f} s, each "
                         f"later epoch {c['later_epoch_s']:.2f} s: **{c['epoch_ratio']:.0f}x** faster "
                         "(target >= 10x).")
    cli = next((r for r in report["runs"] if (r["dataset"], r["mode"]) == ("cats-vs-dogs", "features")
                and not r.get("returncode") and len(r.get("epoch_seconds", [])) >= 2), None)
    if cli:
        setup = cli["wall_s"] - sum(cli["epoch_seconds"])
        later = statistics.median(cli["epoch_seconds"][1:])
        epochs = ", ".join(f"{s:.2f}" for s in cli["epoch_seconds"])
        lines.append(f"In the full `features` CLI run on cats-vs-dogs, everything outside the epochs "
                     f"(process start, decoding, model, embeddings of all images, writing the run folder) "
                     f"took {setup:.0f} s and the epochs (training + validation, timing.csv) {epochs} s: "
                     f"that work + first epoch / later epoch = "
                     f"**{(setup + cli['epoch_seconds'][0]) / later:.0f}x**.")
    lines += ["", f"Commands of the runs: e.g. `{report['runs'][0]['command']}`" if report["runs"] else ""]
    return "\n".join(lines).rstrip() + "\n"


def save(report: dict[str, Any]) -> None:
    from cnnlab._io import write_json, write_text

    write_json(RESULTS / "transfer.json", report)
    write_text(RESULTS / "transfer.md", markdown(report))


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--scratch-epochs", type=int, default=20)
    parser.add_argument("--scratch-lr", type=float, default=3e-4, help="cats_cnn learns at 3e-4, not 1e-3")
    parser.add_argument("--full-epochs", type=int, default=3)
    parser.add_argument("--cache-limit", type=int, default=100, help="images per split for the cache timing")
    parser.add_argument("--no-cache-timing", action="store_true")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs-dir", type=Path, default=None, help="run folders (default: a temp folder)")
    parser.add_argument("--merge", action="store_true", help="add to the rows already in transfer.json")
    parser.add_argument("--render", action="store_true", help="only rewrite transfer.md from transfer.json")
    args = parser.parse_args()
    if args.render:
        save(json.loads((RESULTS / "transfer.json").read_text()))
        return 0
    data_root = Path(os.environ.get("CNNLAB_DATA_DIR", ""))
    if not (data_root / "cats-vs-dogs").is_dir():
        parser.error("set CNNLAB_DATA_DIR to the folder holding cats-vs-dogs/ and imagenette/")
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="cnnlab-transfer-"))
    cache = runs / "embedding-cache"
    report: dict[str, Any] = {"command": "python " + shlex.join(["benchmarks/transfer.py", *sys.argv[1:]]),
                              "runs": []}
    previous = RESULTS / "transfer.json"
    if args.merge and previous.is_file():  # keep rows of earlier invocations (the runs are costly)
        old = json.loads(previous.read_text())
        report["runs"], report["cache"] = old.get("runs", []), old.get("cache")
        report["command"] = old.get("command", "") + " ; " + report["command"]
    # Cheapest and most important first, so a cut-short run still records them.
    plan = sorted(((d, m) for d in args.datasets.split(",") for m in args.modes.split(",")),
                  key=lambda dm: (PRIORITY.index(dm[1]) // 2, DATASETS.index(dm[0]), PRIORITY.index(dm[1])))
    for name, mode in plan:
        row = run_mode(data_root / name, mode, args, runs, cache)
        row["load_average_1min"] = round(os.getloadavg()[0], 2)  # how busy the shared machine was
        report["runs"] = [r for r in report["runs"] if (r["dataset"], r["mode"]) != (name, mode)] + [row]
        print(json.dumps({k: v for k, v in row.items() if k != "command"}), flush=True)
        save(report)
        if name == "cats-vs-dogs" and mode == "features" and not args.no_cache_timing:
            report["cache"] = cache_timing(data_root / name, args)
            print(json.dumps(report["cache"]), flush=True)
            save(report)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
