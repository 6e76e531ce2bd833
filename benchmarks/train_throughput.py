"""Training throughput: cnnlab's training path against the pipelines people usually write.

Three models at the sizes people train them: ``mnist_cnn`` on Fashion-MNIST (28 px, batch 64),
``cats_cnn`` on the cats-vs-dogs photos at 150 px (batch 32) and ``resnet18`` (random init, 2 classes)
on the same photos at 224 px (batch 16). Side by side in one run, per model the same data, batch, Adam,
fp32 and torch thread count; every repeat of every pipeline runs in its own fresh Python
process (so that process-wide settings of one cannot help or hurt another), repeats interleaved so
that machine noise hits all three alike; the figure is the median images/s over the repeats, after
a few warm-up steps:

* **cnnlab**: ``cnnlab.train`` exactly as ``cnnlab train`` runs it (ClassifierModule, ImageDataModule of
  uint8 tensors normalised per batch, the run's callbacks, deterministic mode, atomic checkpoints) with
  its CPU defaults: channels-last convolutions, fused Adam, and the glibc allocator tuning of
  ``cnnlab._perf`` (no page faults on the same activation buffers every step).
* **(a) Lightning + torchvision** (``mnist_cnn`` only): ``torchvision.datasets.FashionMNIST(transform=
  ToTensor())`` (read from the same IDX files, put in torchvision's raw layout in a temporary folder;
  no download), a ``DataLoader(batch_size=64, shuffle=True)`` and a minimal LightningModule.
* **(b) bare PyTorch**: a ``for`` loop over slices of in-memory float tensors (no framework at all, the
  images decoded and normalised beforehand), written as people write it (NCHW, ``torch.optim.Adam``
  defaults, the same model as ``build_model`` makes it, the same loss: BCE for cats_cnn's one logit).

Achieved GFLOP/s = images/s x mult-adds per image (torchinfo) x 2 FLOPs per mult-add x 3 (the backward
pass costs about twice the forward). The machine's fp32 matmul GFLOP/s is measured with 1024x1024
``torch.mm`` (2 n^3 FLOPs each).

Usage:
    CNNLAB_DATA_DIR=/path/to/data python benchmarks/train_throughput.py [--models mnist_cnn cats_cnn
        resnet18] [--steps 120] [--repeats 3]

``--steps``/``--warmup`` apply to mnist_cnn; the photo models run the steps of :data:`MODELS` (one
epoch of the 800 training photos at most, so the bare loop never wraps around).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

LR = 1e-3


@dataclasses.dataclass(frozen=True)
class Bench:
    """One model's setting: its data, image size, batch and (photo models) steps per repeat."""

    data: str
    img_size: int | None
    batch: int
    steps: int = 0  # 0: --steps
    warmup: int = 0  # with steps: untimed steps first
    pipelines: tuple[str, ...] = ("cnnlab", "bare_pytorch")


MODELS = {
    "mnist_cnn": Bench("fashion-mnist", None, 64,
                       pipelines=("cnnlab", "lightning_torchvision", "bare_pytorch")),
    "cats_cnn": Bench("cats-vs-dogs", 150, 32, steps=22, warmup=3),
    "resnet18": Bench("cats-vs-dogs", 224, 16, steps=12, warmup=2),
}


def _data_dir() -> Path:
    value = os.environ.get("CNNLAB_DATA_DIR")
    if not value:
        sys.exit("set CNNLAB_DATA_DIR to the folder holding fashion-mnist/")
    return Path(value)


def _matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


class _StepTimer:
    """Lightning callback: wall time from the start of step ``warmup`` to the end of the last step."""

    def __new__(cls, warmup: int):  # built lazily so importing this file does not import Lightning
        import lightning as L

        class StepTimer(L.Callback):
            def __init__(self) -> None:
                self.t0 = self.t1 = 0.0
                self.images = 0

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                if batch_idx == warmup:
                    self.t0 = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                if batch_idx >= warmup:
                    self.images += int(batch[1].shape[0])
                    self.t1 = time.perf_counter()

            @property
            def rate(self) -> float:
                return self.images / (self.t1 - self.t0)

        return StepTimer()


def _load(model: str):
    """The model's training data as cnnlab loads it (photos through the decode cache)."""
    from cnnlab.data import load_data

    bench = MODELS[model]
    spec = bench.data if bench.img_size is None else str(_data_dir() / bench.data)
    return load_data(spec, data_dir=_data_dir(), img_size=bench.img_size)


def _model(model: str, bundle):
    """The network exactly as ``cnnlab train`` builds it for this data (with its output count)."""
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.recipe import build_model, output_count

    cfg = TrainConfig(data=bundle.spec, model=model, epochs=1, lr=LR, progress=False)
    n_out = output_count(cfg, len(bundle.classes))
    return cfg, build_model(cfg, in_chans=int(bundle.image_shape[0]), num_classes=n_out), n_out


def run_cnnlab(model_name: str, bundle, steps: int, warmup: int, seed: int) -> float:
    """cnnlab's own path (what `cnnlab train` builds), timed over steps warmup..steps."""
    from cnnlab.data.datamodule import ImageDataModule
    from cnnlab.train.callbacks import MetricsHistory, NonFiniteGuard
    from cnnlab.train.module import ClassifierModule
    from cnnlab.train.recipe import normalization
    from cnnlab.train.run import build_trainer
    from cnnlab.transfer.policy import FreezePolicy

    torch.manual_seed(seed)
    batch = MODELS[model_name].batch
    with tempfile.TemporaryDirectory() as tmp:
        cfg, model, n_out = _model(model_name, bundle)
        cfg = dataclasses.replace(cfg, batch_size=batch, out=tmp, seed=seed)
        policy = FreezePolicy.from_config(cfg)
        policy.apply(model)
        module = ClassifierModule(
            model, num_classes=n_out, config=cfg, param_groups=lambda m: policy.param_groups(m, lr=LR)
        )
        mean, std = normalization(cfg, model, int(bundle.image_shape[0]))
        dm = ImageDataModule(bundle, batch_size=batch, mean=mean, std=std, seed=seed)
        timer = _StepTimer(warmup)
        trainer = build_trainer(
            cfg, Path(tmp), [MetricsHistory(tmp, plot=False), NonFiniteGuard(), policy, timer],
            limit_train_batches=steps, limit_val_batches=1,
        )  # fmt: skip
        trainer.fit(module, datamodule=dm)
    return timer.rate


def _torchvision_root(data_dir: Path, tmp: Path) -> Path:
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):  # fmt: skip
        with gzip.open(data_dir / "fashion-mnist" / f"{name}.gz", "rb") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return tmp


def run_lightning_torchvision(root: Path, steps: int, warmup: int, seed: int) -> float:
    """(a) The usual tutorial pipeline: torchvision dataset + ToTensor + DataLoader + LightningModule."""
    import lightning as L
    import torch.nn.functional as F
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from cnnlab.models import create_model

    class Plain(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = create_model("mnist_cnn", num_classes=10, in_chans=1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.cross_entropy(self.model(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=LR)

    torch.manual_seed(seed)
    ds = datasets.FashionMNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
    loader = DataLoader(ds, batch_size=MODELS["mnist_cnn"].batch, shuffle=True)
    timer = _StepTimer(warmup)
    trainer = L.Trainer(
        max_epochs=1, limit_train_batches=steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer], accelerator="cpu",
    )  # fmt: skip
    trainer.fit(Plain(), loader)
    return timer.rate


def run_bare(model_name: str, bundle, steps: int, warmup: int, seed: int) -> float:
    """(b) A bare PyTorch loop over in-memory float tensors (already normalised)."""
    import torch.nn.functional as F

    from cnnlab.train.recipe import normalization

    torch.manual_seed(seed)
    cfg, model, n_out = _model(model_name, bundle)
    model.train()
    mean, std = normalization(cfg, model, int(bundle.image_shape[0]))
    m = torch.tensor(mean).view(1, -1, 1, 1)
    sd = torch.tensor(std).view(1, -1, 1, 1)
    images = (bundle.train.images.float() / 255.0 - m) / sd
    labels = bundle.train.labels
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    order = torch.randperm(images.shape[0])
    batch = MODELS[model_name].batch
    t0, n = 0.0, 0
    for step in range(steps):
        if step == warmup:
            t0 = time.perf_counter()
        idx = order[step * batch : (step + 1) * batch]
        x, y = images[idx], labels[idx]
        out = model(x)
        if n_out == 1:
            loss = F.binary_cross_entropy_with_logits(out.reshape(-1), y.float())
        else:
            loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= warmup:
            n += x.shape[0]
    return n / (time.perf_counter() - t0)


PIPELINES = ("cnnlab", "lightning_torchvision", "bare_pytorch")


def _quiet() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _steps(args: argparse.Namespace, model: str) -> tuple[int, int]:
    bench = MODELS[model]
    return (bench.steps, bench.warmup) if bench.steps else (args.steps, args.warmup)


def _child(args: argparse.Namespace) -> int:
    """One repeat of one pipeline in this (fresh) process; prints its images/s as the last line."""
    _quiet()
    steps, warmup = _steps(args, args.model)
    if args.only == "lightning_torchvision":
        rate = run_lightning_torchvision(Path(args.tv_root), steps, warmup, args.seed)
    else:
        bundle = _load(args.model)
        run = run_cnnlab if args.only == "cnnlab" else run_bare
        rate = run(args.model, bundle, steps, warmup, args.seed)
    print(f"RATE {rate}", flush=True)
    return 0


def _spawn(args: argparse.Namespace, model: str, pipeline: str, seed: int, tv_root: Path) -> float:
    import subprocess

    cmd = [sys.executable, __file__, "--only", pipeline, "--model", model, "--seed", str(seed),
           "--tv-root", str(tv_root), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(args.threads)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RATE ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{model} {pipeline} (repeat seed {seed}) failed (exit status {proc.returncode}):\n"
                 f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return float(lines[-1].split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=120, help="training steps per repeat")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps at the start of each repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads, all pipelines (0 = default)")
    parser.add_argument("--only", choices=PIPELINES, help=argparse.SUPPRESS)  # child process mode
    parser.add_argument("--model", default="mnist_cnn", help=argparse.SUPPRESS)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--tv-root", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only:
        return _child(args)
    return _parent(args)


def _mult_adds(model: str, bundle) -> int:
    import torchinfo

    _, net, _ = _model(model, bundle)
    return int(torchinfo.summary(net, input_size=(1, *bundle.image_shape), verbose=0).total_mult_adds)


def _parent(args: argparse.Namespace) -> int:
    from cnnlab._io import write_json, write_text

    _quiet()
    data_dir = _data_dir()
    mult_adds = {m: _mult_adds(m, _load(m)) for m in args.models}  # photos decoded into the cache first
    rates: dict[str, dict[str, list[float]]] = {m: {p: [] for p in MODELS[m].pipelines} for m in args.models}
    matmul = []
    with tempfile.TemporaryDirectory() as tmp:
        root = _torchvision_root(data_dir, Path(tmp))
        for r in range(args.repeats):
            matmul.append(_matmul_gflops())
            for model in args.models:
                pipes = MODELS[model].pipelines
                for pipeline in pipes[r % len(pipes) :] + pipes[: r % len(pipes)]:  # rotate every repeat
                    rates[model][pipeline].append(_spawn(args, model, pipeline, r, root))
                print(f"repeat {r + 1} {model}: "
                      + ", ".join(f"{k} {v[-1]:,.1f} img/s" for k, v in rates[model].items()), flush=True)
    mm = statistics.median(matmul)
    load = os.getloadavg()[0]
    result: dict = {"repeats": args.repeats, "threads": torch.get_num_threads(), "matmul_fp32_gflops": mm,
                    "matmul_repeats": matmul, "load_average_1min_end": load, "models": {}}
    rows = []
    for model in args.models:
        med = {k: statistics.median(v) for k, v in rates[model].items()}
        flops = mult_adds[model] * 2 * 3
        steps, warmup = _steps(args, model)
        bench = MODELS[model]
        result["models"][model] = {
            "data": bench.data, "img_size": bench.img_size, "batch_size": bench.batch,
            "steps_per_repeat": steps,
            "warmup_steps": warmup, "images_per_s": rates[model], "median_images_per_s": med,
            "mult_adds_per_image": mult_adds[model],
            "achieved_gflops": {k: v * flops / 1e9 for k, v in med.items()},
            "fraction_of_matmul_peak": {k: v * flops / 1e9 / mm for k, v in med.items()},
            "speedup": {k: med["cnnlab"] / v for k, v in med.items()},
        }
        size = "28 px" if bench.img_size is None else f"{bench.img_size} px"
        for k, v in med.items():
            bare_target = 0.9 if model == "mnist_cnn" else 1.1
            target = {"lightning_torchvision": 1.6, "bare_pytorch": bare_target}.get(k)
            verdict = "" if target is None else (
                f"{'met' if med['cnnlab'] / v >= target else 'not met'} (>= {target}x)")
            rows.append(f"| {model} | {size}, batch {bench.batch} | {k} | {v:,.1f} | "
                        f"{v * flops / 1e9:.1f} | "
                        f"{v * flops / 1e9 / mm:.0%} | {med['cnnlab'] / v:.2f}x | {verdict} |")
    write_json(HERE / "results" / "train_throughput.json", result)
    all_repeats = "; ".join(f"{m} {k} {[round(x, 1) for x in v]}" for m in args.models
                            for k, v in rates[m].items())
    md = [
        "## train_throughput",
        "",
        "Training images/s (Adam, fp32, CPU), median of "
        f"{args.repeats} interleaved repeats, {torch.get_num_threads()} thread(s), each repeat of each "
        "pipeline in a fresh process: `mnist_cnn` on Fashion-MNIST "
        f"({args.steps} steps, {args.warmup} untimed), `cats_cnn` on the 800 cats-vs-dogs training photos "
        f"at 150 px ({MODELS['cats_cnn'].steps} steps, {MODELS['cats_cnn'].warmup} untimed), `resnet18` "
        f"(random init, 2 classes) on the same photos at 224 px ({MODELS['resnet18'].steps} steps, "
        f"{MODELS['resnet18'].warmup} untimed). Command: `python benchmarks/train_throughput.py "
        f"{' '.join(sys.argv[1:])}`.",
        "",
        "| model | input | pipeline | images/s | achieved GFLOP/s | of matmul peak | cnnlab speed-up "
        "| target |",
        "|---|---|---|---:|---:|---:|---:|---|",
        *rows,
        "",
        f"Measured fp32 matmul peak (1024^3 `torch.mm`, median of {len(matmul)}): {mm:.1f} GFLOP/s; "
        "GFLOP/s = images/s x mult-adds (torchinfo: "
        + ", ".join(f"{m} {mult_adds[m] / 1e6:,.1f}M" for m in args.models)
        + ") x 2 x 3 (forward + backward). Load average "
        f"{load:.1f} at the end (2 cores shared with other work). All repeats: {all_repeats}.",
    ]
    write_text(HERE / "results" / "train_throughput.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
