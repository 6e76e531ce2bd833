"""GPU check: what a lent CUDA accelerator must do with cnnlab, in under five minutes.

1. **Training with AMP and channels-last on CUDA**: a few optimisation steps of ``mnist_cnn`` (the
   embedded sample, 28 px, batch 64), ``cats_cnn`` (150 px, batch 32) and ``efficientnet_lite0`` (224 px,
   batch 16, random init) through cnnlab's own training path (:func:`cnnlab.train.run.training_setup`,
   :func:`~cnnlab.train.run.build_trainer`: the module, data module, callbacks and checkpoints of
   ``cnnlab train``) with ``precision`` bf16-mixed (16-mixed where the GPU has no bf16) and channels-last
   convolutions. Every step's loss must be finite. Images/s (median step time after warm-up) stands beside
   the same steps on the CPU (fp32, the CPU's defaults), measured in the same run.
2. **Grad-CAM on CUDA equals the CPU's**: the same weights and images (fp32, TF32 off), maps compared
   element-wise; the largest difference must stay under :data:`CAM_TOL` and the explained classes agree.

The photo models train on a synthetic two-class folder written to a temporary directory (the lent machine
has no data set); cnnlab decodes it as any folder. Without CUDA the script prints one line,
``skipped: no CUDA``, and exits 0; ``--device cpu`` runs the whole check with the CPU standing in for the
GPU (fp32), to try the script anywhere.

Usage:
    python benchmarks/gpu.py [--steps 12] [--warmup 3] [--device cuda|cpu]

Writes ``benchmarks/results/gpu.json`` and ``gpu.md`` (the BENCHMARKS.md section). Exit status 1 when a
check fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
RESULTS = HERE / "results"

#: (data, image size, batch) per model; None data means the synthetic photo folder.
MODELS: dict[str, tuple[str | None, int | None, int]] = {
    "mnist_cnn": ("sample", None, 64),
    "cats_cnn": (None, 150, 32),
    "efficientnet_lite0": (None, 224, 16),
}
#: Largest |Grad-CAM map difference| (maps in [0, 1]) between the accelerator and the CPU.
CAM_TOL = 1e-3
SKIP_LINE = "skipped: no CUDA"


def _photo_folder(root: Path, per_class: int = 40, size: int = 160) -> Path:
    """Two classes of noisy photos, one redder, one bluer: a folder SPEC cnnlab loads like any other."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for k, name in enumerate(("red", "blue")):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            img = torch.randint(0, 160, (size, size, 3), generator=g, dtype=torch.uint8)
            img[..., 0 if k == 0 else 2] += 90
            Image.fromarray(img.numpy()).save(folder / f"{i:03d}.png")
    return root


def _step_timer(device: str) -> Any:
    """A Lightning callback recording every step's wall time (synchronised on CUDA) and loss."""
    import lightning as L

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    class StepTimer(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.losses: list[float] = []
            self.images = 0
            self._t = 0.0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            sync()
            self._t = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            sync()
            self.seconds.append(time.perf_counter() - self._t)
            self.images = int(batch[1].shape[0])
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.losses.append(float(loss.detach().float()))

    return StepTimer()


def train_steps(model: str, data: str, img_size: int | None, batch: int, *, device: str, amp: bool,
                steps: int, warmup: int, out: Path) -> dict[str, Any]:
    """``steps`` optimisation steps of ``model`` on ``device`` through cnnlab's training path."""
    import lightning as L

    from cnnlab.train.config import TrainConfig
    from cnnlab.train.recipe import build_model, output_count
    from cnnlab.train.run import build_trainer, load_training_data, training_setup

    cfg = TrainConfig(data=data, model=model, img_size=img_size, batch_size=batch, epochs=1, lr=1e-3,
                      accelerator="cuda" if device == "cuda" else "cpu", channels_last=True if amp else None,
                      deterministic=False, progress=False, out=str(out), seed=0, val_split=0.25)
    bundle = load_training_data(cfg)
    L.seed_everything(0, verbose=False)
    n_out = output_count(cfg, len(bundle.classes))
    net = build_model(cfg, in_chans=int(bundle.image_shape[0]), num_classes=n_out)
    setup = training_setup(cfg, bundle, net, num_classes=n_out, notices=[])
    timer = _step_timer(device)
    precision = "32-true"
    if amp:
        bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
        precision = ("bf16-mixed" if bf16 else "16-mixed") if device == "cuda" else "32-true"
    trainer = build_trainer(cfg, out, [*setup.callbacks, timer], precision=precision, max_epochs=steps,
                            limit_train_batches=min(steps, max(1, len(bundle.train) // batch)),
                            limit_val_batches=1, max_steps=steps)
    trainer.fit(setup.module, datamodule=setup.datamodule)
    timed = timer.seconds[warmup:] or timer.seconds
    return {
        "precision": precision,
        "channels_last": bool(setup.module.nhwc),
        "steps": len(timer.seconds),
        "batch": batch,
        "images_per_s": timer.images / statistics.median(timed),
        "losses_finite": bool(timer.losses) and all(math.isfinite(v) for v in timer.losses),
        "last_loss": timer.losses[-1] if timer.losses else float("nan"),
    }


def cam_agreement(model: str, data: str, img_size: int | None, *, device: str) -> dict[str, Any]:
    """Grad-CAM of the same weights and images on ``device`` and on the CPU (fp32, TF32 off)."""
    from cnnlab.data.transforms import Preprocess
    from cnnlab.interpret.cam import explain
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.recipe import build_model, normalization, output_count
    from cnnlab.train.run import load_training_data

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    cfg = TrainConfig(data=data, model=model, img_size=img_size, progress=False, seed=0, val_split=0.25)
    bundle = load_training_data(cfg)
    torch.manual_seed(0)
    n_out = output_count(cfg, len(bundle.classes))
    net = build_model(cfg, in_chans=int(bundle.image_shape[0]), num_classes=n_out).eval()
    mean, std = normalization(cfg, net, int(bundle.image_shape[0]))
    images, _ = bundle.val.get_batch(torch.arange(min(8, len(bundle.val))))
    x = Preprocess(tuple(images.shape[1:]), tuple(mean), tuple(std)).normalize(images)  # type: ignore[arg-type]
    on_cpu = explain(net, x, method="gradcam")
    on_dev = explain(net.to(device), x.to(device), method="gradcam")
    diff = float((on_dev.maps.cpu() - on_cpu.maps).abs().max())
    same = bool(torch.equal(on_dev.targets.cpu(), on_cpu.targets))
    return {"images": len(x), "max_abs_map_diff": diff, "targets_equal": same, "layer": on_cpu.layer,
            "passed": diff <= CAM_TOL and same}


def _markdown(doc: dict[str, Any]) -> str:
    lines = ["## gpu", "", "GPU check (`python benchmarks/gpu.py`): training with AMP and channels-last, and "
             "Grad-CAM against the CPU, on the accelerator."]
    if doc.get("skipped"):
        lines += ["", f"Not measured: {doc['skipped']}. Run `python benchmarks/gpu.py` on a machine with a "
                  "CUDA GPU to fill this section (under five minutes)."]
        return "\n".join(lines) + "\n"
    lines += ["", f"Device: {doc['device_name']} (torch {doc['torch']}); {doc['steps']} steps per model, "
              f"images/s from the median step after {doc['warmup']} warm-up steps; CPU: the same steps, "
              "fp32.",
              "", "| model | batch | precision | channels-last | finite losses | images/s accelerator | "
              "images/s CPU | ratio |", "|---|---:|---|---|---|---:|---:|---:|"]
    for name, r in doc["train"].items():
        dev, cpu = r["device"], r["cpu"]
        lines.append(f"| {name} | {dev['batch']} | {dev['precision']} | {dev['channels_last']} | "
                     f"{dev['losses_finite']} | {dev['images_per_s']:,.0f} | {cpu['images_per_s']:,.0f} | "
                     f"{dev['images_per_s'] / cpu['images_per_s']:.1f}x |")
    lines += ["", f"Grad-CAM, accelerator against CPU (fp32, TF32 off; tolerance {CAM_TOL:g} on maps in "
              "[0, 1]):",
              "", "| model | layer | images | max abs map difference | same classes | passed |",
              "|---|---|---:|---:|---|---|"]
    for name, c in doc["cam"].items():
        lines.append(f"| {name} | {c['layer']} | {c['images']} | {c['max_abs_map_diff']:.2e} | "
                     f"{c['targets_equal']} | {c['passed']} |")
    return "\n".join(lines) + "\n"


def _write(doc: dict[str, Any]) -> None:
    from cnnlab._io import write_json, write_text

    write_json(RESULTS / "gpu.json", doc)
    write_text(RESULTS / "gpu.md", _markdown(doc))


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cpu: the CPU stands in for the GPU (fp32), to try the script")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print(SKIP_LINE)
        if not args.no_write and not (RESULTS / "gpu.json").is_file():  # never erase a measured result
            _write({"skipped": "no CUDA device on the machine that ran it (no GPU was lent to the task that "
                               "wrote this script, issue 23)"})
        return 0
    for name in ("lightning.pytorch", "lightning.fabric"):  # the Trainer's banner on every run is noise here
        logging.getLogger(name).setLevel(logging.WARNING)
    t0 = time.perf_counter()
    doc: dict[str, Any] = {"device": args.device, "torch": torch.__version__, "steps": args.steps,
                           "warmup": args.warmup, "train": {}, "cam": {},
                           "device_name": torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU"}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CNNLAB_CACHE_DIR", str(Path(tmp) / "cache"))
        photos = str(_photo_folder(Path(tmp) / "photos"))
        for name in args.models:
            data, size, batch = MODELS[name]
            spec = data or photos
            runs = {}
            for where, device, amp in (("device", args.device, True), ("cpu", "cpu", False)):
                runs[where] = train_steps(name, spec, size, batch, device=device, amp=amp, steps=args.steps,
                                          warmup=args.warmup, out=Path(tmp) / f"{name}-{where}")
            doc["train"][name] = runs
            doc["cam"][name] = cam_agreement(name, spec, size, device=args.device)
            print(json.dumps({name: {"train": runs, "cam": doc["cam"][name]}}), flush=True)
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    ok = all(r["device"]["losses_finite"] for r in doc["train"].values()) and all(
        c["passed"] for c in doc["cam"].values())
    doc["passed"] = ok
    if not args.no_write:
        _write(doc)
    print(f"{'passed' if ok else 'FAILED'} in {doc['seconds']} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
