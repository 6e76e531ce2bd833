"""Data loading speed: cnnlab's in-memory slice batches against torchvision's per-sample pipelines.

Two measurements, each side by side in this one process, median of ``--repeats`` runs:

1. Fashion-MNIST training batches per second (batch 64, shuffled): cnnlab (``load_data`` once, then
   ``SliceBatches`` + ``Normalize`` -> float32) against ``torchvision.datasets.FashionMNIST`` +
   ``DataLoader(ToTensor())`` reading the same IDX files (copied into its ``FashionMNIST/raw`` layout;
   no download). Both sides produce float32 [64, 1, 28, 28] batches in [0, 1]. Target: >= 10x.
2. cats-vs-dogs at 150x150, the second epoch over the 800 training images (batch 32, shuffled):
   cnnlab (decoded once into the on-disk cache, then slices) against ``ImageFolder`` +
   ``Resize((150, 150))`` + ``ToTensor()`` + ``DataLoader``, which decodes every JPEG again each epoch.
   Target: >= 3x. The first (cold) epoch is reported too: cnnlab's decode + cache write vs one baseline
   epoch, and a cache-hit reload.

Both baselines use ``num_workers=0`` (the same single process as cnnlab's loader), and torch runs with
``--threads`` intra-op threads (default 1) on both sides: gathering and converting batches is
memory-bound, and on a small shared machine OpenMP threads mostly wait for each other.

Usage:
    CNNLAB_DATA_DIR=../shared/data python benchmarks/data_loading.py [--repeats 3] [--batches 300]
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cnnlab._io import write_json, write_text  # noqa: E402
from cnnlab.data import load_data  # noqa: E402
from cnnlab.data.datamodule import SliceBatches  # noqa: E402
from cnnlab.data.transforms import Normalize  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def consume(
    batches: object, limit: int | None, to_float: Callable[[torch.Tensor], torch.Tensor] | None
) -> int:
    n = 0
    for x, _ in batches:  # type: ignore[attr-defined]
        if to_float is not None:
            x = to_float(x)
        assert x.dtype == torch.float32
        n += 1
        if limit is not None and n >= limit:
            break
    return n


def fashion(data_dir: Path, repeats: int, n_batches: int) -> dict[str, object]:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    t0 = time.perf_counter()
    bundle = load_data("fashion-mnist", data_dir=data_dir)
    load_s = time.perf_counter() - t0
    norm = Normalize((0.0,), (1.0,))
    ours = SliceBatches(bundle.train, batch_size=64, shuffle=True, seed=0)

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for f in (data_dir / "fashion-mnist").glob("*.gz"):
            (raw / f.name.removesuffix(".gz")).write_bytes(gzip.decompress(f.read_bytes()))
        tv = datasets.FashionMNIST(tmp, train=True, transform=transforms.ToTensor(), download=False)
        loader = DataLoader(tv, batch_size=64, shuffle=True, num_workers=0)
        base_s, base_all = median_time(lambda: consume(loader, n_batches, None), repeats)
        ours_s, ours_all = median_time(lambda: consume(ours, n_batches, norm), repeats)
    return {
        "batches": n_batches, "batch_size": 64, "cnnlab_load_s": round(load_s, 3),
        "cnnlab_batches_per_s": round(n_batches / ours_s, 1),
        "torchvision_batches_per_s": round(n_batches / base_s, 1),
        "speedup": round(base_s / ours_s, 1),
        "cnnlab_times_s": [round(t, 4) for t in ours_all],
        "torchvision_times_s": [round(t, 4) for t in base_all],
        "target": 10.0,
    }


def cats(data_dir: Path, repeats: int) -> dict[str, object]:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    folder = data_dir / "cats-vs-dogs"
    tf = transforms.Compose([transforms.Resize((150, 150)), transforms.ToTensor()])
    base = DataLoader(datasets.ImageFolder(str(folder / "train"), transform=tf), batch_size=32, shuffle=True)
    norm = Normalize((0.0,), (1.0,))
    with tempfile.TemporaryDirectory() as cache:
        # Epoch 1 (cold): cnnlab decodes every file once (thread pool, JPEG draft) and writes the cache.
        t0 = time.perf_counter()
        bundle = load_data(str(folder), img_size=150, cache_dir=cache)
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_data(str(folder), img_size=150, cache_dir=cache)
        reload_s = time.perf_counter() - t0
        ours = SliceBatches(bundle.train, batch_size=32, shuffle=True, seed=0)
        consume(ours, None, norm)  # epoch 1 over the tensors
        base_epoch1_s, _ = median_time(lambda: consume(base, None, None), 1)
        ours_s, ours_all = median_time(lambda: consume(ours, None, norm), repeats)
        base_s, base_all = median_time(lambda: consume(base, None, None), repeats)
    return {
        "images": len(bundle.train), "size": 150, "batch_size": 32,
        "cnnlab_epoch2_s": round(ours_s, 4), "imagefolder_epoch2_s": round(base_s, 3),
        "speedup": round(base_s / ours_s, 1),
        "cnnlab_cold_decode_s": round(cold_s, 2), "imagefolder_epoch1_s": round(base_epoch1_s, 2),
        "cold_speedup": round(base_epoch1_s / cold_s, 1), "cnnlab_cache_reload_s": round(reload_s, 3),
        "cnnlab_times_s": [round(t, 4) for t in ours_all],
        "imagefolder_times_s": [round(t, 3) for t in base_all],
        "target": 3.0,
    }


def markdown(res: dict[str, dict[str, object]], cmd: str) -> str:
    f, c = res["fashion_mnist"], res["cats_vs_dogs"]
    ok = lambda r: "yes" if float(r["speedup"]) >= float(r["target"]) else "**no**"  # noqa: E731
    return f"""## data_loading

Command: `{cmd}` (median of {res["repeats"]} repeats, side by side in one process; torch threads:
{res["torch_threads"]}). Baselines use `num_workers=0`, like cnnlab's loader.

| measurement | cnnlab | torchvision baseline | speedup | target met |
|---|---:|---:|---:|---|
| Fashion-MNIST train batches/s (64, float32 out; {f["batches"]} batches) | {f["cnnlab_batches_per_s"]} | {f["torchvision_batches_per_s"]} (`FashionMNIST` + `DataLoader(ToTensor())`) | {f["speedup"]}x | {ok(f)} (>= 10x) |
| cats-vs-dogs 150x150, epoch 2 over {c["images"]} images (s) | {c["cnnlab_epoch2_s"]} | {c["imagefolder_epoch2_s"]} (`ImageFolder` + `Resize` + `ToTensor`) | {c["speedup"]}x | {ok(c)} (>= 3x) |
| cats-vs-dogs cold: first decode + cache write vs one baseline epoch (s) | {c["cnnlab_cold_decode_s"]} | {c["imagefolder_epoch1_s"]} | {c["cold_speedup"]}x | (info) |

One-off costs not in the rows above: loading Fashion-MNIST's IDX files into memory took {f["cnnlab_load_s"]} s;
reloading cats-vs-dogs from the decode cache took {c["cnnlab_cache_reload_s"]} s.
"""  # noqa: E501


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--data-dir", default=os.environ.get("CNNLAB_DATA_DIR"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=300, help="Fashion-MNIST batches timed per repeat")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both sides)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.data_dir:
        parser.error("set CNNLAB_DATA_DIR or pass --data-dir (needs fashion-mnist/ and cats-vs-dogs/)")
    data_dir = Path(args.data_dir)
    res: dict[str, object] = {"repeats": args.repeats, "torch_threads": torch.get_num_threads(),
                              "python": platform.python_version(), "torch": torch.__version__}
    res["fashion_mnist"] = fashion(data_dir, args.repeats, args.batches)
    res["cats_vs_dogs"] = cats(data_dir, args.repeats)
    cmd = "python benchmarks/data_loading.py" + (f" --repeats {args.repeats}" if args.repeats != 3 else "")
    cmd += f" --threads {args.threads}" if args.threads != 1 else ""
    write_json(RESULTS / "data_loading.json", res)
    md = markdown(res, cmd)  # type: ignore[arg-type]
    write_text(RESULTS / "data_loading.md", md)
    print(md)
    return 0  # a missed target is a result (shown in the table), not a crash


if __name__ == "__main__":
    raise SystemExit(main())
