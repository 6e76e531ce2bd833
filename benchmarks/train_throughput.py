"""Training throughput: cnnlab's training path against the pipelines people usually write.

Side by side in one run, same model (``mnist_cnn``), same data (Fashion-MNIST train, 60k), batch 64,
Adam, fp32, the same torch thread count; every repeat of every pipeline runs in its own fresh Python
process (so that process-wide settings of one cannot help or hurt another), repeats interleaved so
that machine noise hits all three alike; the figure is the median images/s over the repeats, after
a few warm-up steps:

* **cnnlab**: ``cnnlab.train`` exactly as ``cnnlab train`` runs it (ClassifierModule, ImageDataModule of
  uint8 tensors normalised per batch, the run's callbacks, deterministic mode, atomic checkpoints) with
  its CPU defaults: channels-last convolutions, fused Adam, and the glibc allocator tuning of
  ``cnnlab._perf`` (no page faults on the same activation buffers every step).
* **(a) Lightning + torchvision**: ``torchvision.datasets.FashionMNIST(transform=ToTensor())`` (read
  from the same IDX files, put in torchvision's raw layout in a temporary folder; no download), a
  ``DataLoader(batch_size=64, shuffle=True)`` and a minimal LightningModule that logs its loss.
* **(b) bare PyTorch**: a ``for`` loop over slices of in-memory float tensors (no framework at all),
  written as people write it (NCHW, ``torch.optim.Adam`` defaults).

Achieved GFLOP/s = images/s x mult-adds per image (torchinfo) x 2 FLOPs per mult-add x 3 (the backward
pass costs about twice the forward). The machine's fp32 matmul GFLOP/s is measured with 1024x1024
``torch.mm`` (2 n^3 FLOPs each).

Usage:
    CNNLAB_DATA_DIR=/path/to/data python benchmarks/train_throughput.py [--steps 120] [--repeats 3]
"""

from __future__ import annotations

import argparse
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

BATCH = 64
LR = 1e-3


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


def run_cnnlab(bundle, steps: int, warmup: int, seed: int) -> float:
    """cnnlab's own path (what `cnnlab train` builds), timed over steps warmup..steps."""
    from cnnlab.data.datamodule import ImageDataModule
    from cnnlab.train.build import build_model
    from cnnlab.train.callbacks import MetricsHistory, NonFiniteGuard
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.module import ClassifierModule
    from cnnlab.train.run import build_trainer
    from cnnlab.train.transfer import FreezePolicy

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(data="fashion-mnist", model="mnist_cnn", epochs=1, batch_size=BATCH, lr=LR, out=tmp,
                          progress=False, seed=seed)  # fmt: skip
        model = build_model(cfg, in_chans=1, num_classes=10)
        policy = FreezePolicy.from_config(cfg)
        policy.apply(model)
        module = ClassifierModule(
            model, num_classes=10, config=cfg, param_groups=lambda m: policy.param_groups(m, lr=LR)
        )
        dm = ImageDataModule(bundle, batch_size=BATCH, seed=seed)
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
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True)
    timer = _StepTimer(warmup)
    trainer = L.Trainer(
        max_epochs=1, limit_train_batches=steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer], accelerator="cpu",
    )  # fmt: skip
    trainer.fit(Plain(), loader)
    return timer.rate


def run_bare(images: torch.Tensor, labels: torch.Tensor, steps: int, warmup: int, seed: int) -> float:
    """(b) A bare PyTorch loop over in-memory float tensors (already normalised)."""
    import torch.nn.functional as F

    from cnnlab.models import create_model

    torch.manual_seed(seed)
    model = create_model("mnist_cnn", num_classes=10, in_chans=1).train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    order = torch.randperm(images.shape[0])
    t0, n = 0.0, 0
    for step in range(steps):
        if step == warmup:
            t0 = time.perf_counter()
        idx = order[step * BATCH : (step + 1) * BATCH]
        x, y = images[idx], labels[idx]
        loss = F.cross_entropy(model(x), y)
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


def _child(args: argparse.Namespace) -> int:
    """One repeat of one pipeline in this (fresh) process; prints its images/s as the last line."""
    from cnnlab.data import load_data

    _quiet()
    data_dir = _data_dir()
    if args.only == "lightning_torchvision":
        rate = run_lightning_torchvision(Path(args.tv_root), args.steps, args.warmup, args.seed)
    else:
        bundle = load_data("fashion-mnist", data_dir=data_dir)
        if args.only == "cnnlab":
            rate = run_cnnlab(bundle, args.steps, args.warmup, args.seed)
        else:
            images = bundle.train.images.float().div_(255.0)
            rate = run_bare(images, bundle.train.labels, args.steps, args.warmup, args.seed)
    print(f"RATE {rate}", flush=True)
    return 0


def _spawn(args: argparse.Namespace, pipeline: str, seed: int, tv_root: Path) -> float:
    import subprocess

    cmd = [sys.executable, __file__, "--only", pipeline, "--seed", str(seed), "--tv-root", str(tv_root),
           "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(args.threads)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RATE ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{pipeline} (repeat seed {seed}) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
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
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--tv-root", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only:
        return _child(args)

    import torchinfo

    from cnnlab._io import write_json, write_text
    from cnnlab.models import create_model

    _quiet()
    data_dir = _data_dir()
    mult_adds = torchinfo.summary(
        create_model("mnist_cnn", num_classes=10, in_chans=1), input_size=(1, 1, 28, 28), verbose=0
    ).total_mult_adds
    flops_per_image = mult_adds * 2 * 3
    rates: dict[str, list[float]] = {k: [] for k in PIPELINES}
    matmul = []
    with tempfile.TemporaryDirectory() as tmp:
        root = _torchvision_root(data_dir, Path(tmp))
        for r in range(args.repeats):
            matmul.append(_matmul_gflops())
            for pipeline in PIPELINES[r % 3 :] + PIPELINES[: r % 3]:  # rotate the order every repeat
                rates[pipeline].append(_spawn(args, pipeline, r, root))
            print(
                f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f} img/s" for k, v in rates.items()),
                flush=True,
            )
    med = {k: statistics.median(v) for k, v in rates.items()}
    mm = statistics.median(matmul)
    result = {
        "model": "mnist_cnn",
        "batch_size": BATCH,
        "steps_per_repeat": args.steps,
        "warmup_steps": args.warmup,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "images_per_s": rates,
        "median_images_per_s": med,
        "speedup_vs_lightning_torchvision": med["cnnlab"] / med["lightning_torchvision"],
        "speedup_vs_bare_pytorch": med["cnnlab"] / med["bare_pytorch"],
        "mult_adds_per_image": mult_adds,
        "achieved_gflops": {k: v * flops_per_image / 1e9 for k, v in med.items()},
        "matmul_fp32_gflops": mm,
    }
    lines = [
        f"{'pipeline':<28}{'images/s (median)':>20}{'GFLOP/s':>10}{'cnnlab speed-up':>18}",
        *(
            f"{k:<28}{v:>20,.0f}{v * flops_per_image / 1e9:>10.2f}{med['cnnlab'] / v:>17.2f}x"
            for k, v in med.items()
        ),
        f"fp32 matmul (1024^3) on this machine: {mm:.1f} GFLOP/s; "
        f"mnist_cnn: {mult_adds / 1e6:.2f}M mult-adds/image",
    ]
    print("\n".join(lines))
    results = HERE / "results"
    write_json(results / "train_throughput.json", result)
    md = [
        "## train_throughput",
        "",
        "Training images/s of `mnist_cnn` on Fashion-MNIST (batch 64, Adam, fp32, CPU), median of "
        f"{args.repeats} interleaved repeats of {args.steps} steps ({args.warmup} warm-up steps untimed), "
        f"{torch.get_num_threads()} thread(s). Command: `python benchmarks/train_throughput.py "
        f"{' '.join(sys.argv[1:])}` (each repeat of each pipeline in a fresh process).",
        "",
        "| pipeline | images/s | achieved GFLOP/s | cnnlab speed-up |",
        "|---|---:|---:|---:|",
        *(
            f"| {k} | {v:,.0f} | {v * flops_per_image / 1e9:.2f} | {med['cnnlab'] / v:.2f}x |"
            for k, v in med.items()
        ),
        "",
        f"Targets: >= 1.6x (a) Lightning + torchvision and >= 0.9x (b) bare PyTorch. Measured fp32 matmul "
        f"peak: {mm:.1f} GFLOP/s; GFLOP/s = images/s x {mult_adds / 1e6:.2f}M mult-adds x 2 x 3 (forward + "
        "backward). All repeats: "
        + "; ".join(f"{k} {[round(x) for x in v]}" for k, v in rates.items())
        + ".",
    ]
    write_text(results / "train_throughput.md", "\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
