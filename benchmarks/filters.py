"""A 48-filter Gabor bank over 1,000 Fashion-MNIST images: one batched call vs a loop of scipy correlate2d.

Bank (stated here, recorded in the results): 4 frequencies (0.1, 0.2, 0.3, 0.4 cycles/px) x 6 orientations
(0°, 30°, ..., 150°) x 2 phases (0, 90°), one sigma (2.0 px, n_stds 3: kernels up to 13 x 13) = 48 filters.
Images: the first 1,000 Fashion-MNIST test images (``CNNLAB_DATA_DIR/fashion-mnist``; the embedded sample
when that is absent), 28 x 28, float32 in [0, 1], "same" zero padding.

* cnnlab: ``apply_bank(images, bank)`` — one ``torch.nn.functional.conv2d`` call, [1000, 48, 28, 28].
* baseline: ``scipy.signal.correlate2d(image, kernel, mode="same")`` for every image and filter (48,000
  calls), each with the kernel at its own natural size (no zero padding to the bank's common size, so the
  loop does no extra work).

Both compute the same outputs (checked with allclose on 50 images x 48 filters before timing). Each is
timed side by side, interleaved, ``--repeats`` times (default 3); the medians and their ratio are reported
(target >= 20x).

Usage:
    python benchmarks/filters.py [--repeats 3] [--images 1000]

Writes ``benchmarks/results/filters.json`` and ``benchmarks/results/filters.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT / "src"))

FREQUENCIES = (0.1, 0.2, 0.3, 0.4)
THETAS = 6
PHASES = (0.0, math.pi / 2)
SIGMA = 2.0
TARGET = 20.0


def load_images(n: int) -> tuple[np.ndarray, str]:
    """First ``n`` Fashion-MNIST test images as float32 [n, 28, 28] in [0, 1], and where they came from."""
    data_dir = os.environ.get("CNNLAB_DATA_DIR")
    path = Path(data_dir or "") / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    if data_dir and path.is_file():
        from cnnlab.data.idx import read_idx

        images, source = read_idx(path)[:n], f"Fashion-MNIST test set ({path})"
    else:
        from cnnlab.data import load_data

        bundle = load_data("sample")
        images = bundle.train.images[:n, 0].numpy()
        source = "embedded Fashion-MNIST sample (CNNLAB_DATA_DIR unset)"
    if len(images) < n:
        raise SystemExit(f"only {len(images)} images available, {n} requested")
    return images.astype(np.float32) / 255.0, source


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()

    import scipy
    import scipy.signal
    import torch

    from cnnlab._io import write_json, write_text
    from cnnlab.filters import apply_bank, make_bank
    from cnnlab.filters._gabor import gabor_kernel

    images, source = load_images(args.images)
    bank = make_bank("gabor", frequencies=FREQUENCIES, thetas=THETAS, sigmas=(SIGMA,), phases=PHASES)
    assert bank.out_channels == 48
    # The loop's kernels at their natural (unpadded) sizes, float32 like the images.
    native = [gabor_kernel(p["frequency"], p["theta"], sigma_x=p["sigma_x"], sigma_y=p["sigma_y"],
                           phase=p["phase"]).astype(np.float32) for p in bank.params]
    batch = torch.from_numpy(images[:, None])

    def fast() -> torch.Tensor:
        return apply_bank(batch, bank)

    def loop(imgs: np.ndarray) -> np.ndarray:
        out = np.empty((len(imgs), len(native), *imgs.shape[1:]), dtype=np.float32)
        for i, img in enumerate(imgs):
            for j, k in enumerate(native):
                out[i, j] = scipy.signal.correlate2d(img, k, mode="same")
        return out

    # Same outputs: a subset of 50 images x 48 filters.
    check = 50
    got, ref = fast()[:check].numpy(), loop(images[:check])
    max_abs = float(np.abs(got - ref).max())
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    print(f"outputs agree on {check} images x 48 filters (max |diff| {max_abs:.2e})")

    fast()  # warm-up (thread pool, allocator)
    t_fast, t_loop, c_fast, c_loop = [], [], [], []
    for r in range(args.repeats):
        for fn, wall, cpu in ((fast, t_fast, c_fast), (lambda: loop(images), t_loop, c_loop)):
            t0, p0 = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - p0)  # CPU seconds of all this process's threads
        print(f"repeat {r + 1}/{args.repeats}: batched {t_fast[-1]:.3f} s, scipy loop {t_loop[-1]:.3f} s "
              f"(CPU {c_fast[-1]:.3f} s / {c_loop[-1]:.3f} s)", flush=True)
    med_fast, med_loop = statistics.median(t_fast), statistics.median(t_loop)
    ratio = med_loop / med_fast
    cpu_ratio = statistics.median(c_loop) / statistics.median(c_fast)
    n_img = len(images)

    rows = [
        ("cnnlab apply_bank (1 batched F.conv2d)", med_fast, n_img / med_fast),
        ("loop of scipy.signal.correlate2d", med_loop, n_img / med_loop),
    ]
    print(f"\n{'method':<42} {'median s':>10} {'images/s':>10}")
    for name, t, ips in rows:
        print(f"{name:<42} {t:>10.3f} {ips:>10.0f}")
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"speed-up: {ratio:.1f}x wall clock (target >= {TARGET:.0f}x: {verdict}); "
          f"{cpu_ratio:.1f}x in CPU time (all threads counted; less sensitive to other load)")

    kh, kw = bank.kernel_size
    result = {
        "bank": {"name": "gabor", "filters": 48, "frequencies": list(FREQUENCIES), "thetas": THETAS,
                 "phases": list(PHASES), "sigma": SIGMA, "kernel_size": [kh, kw]},
        "images": {"count": n_img, "shape": list(images.shape[1:]), "source": source},
        "repeats": args.repeats,
        "batched_s": t_fast,
        "scipy_loop_s": t_loop,
        "median_batched_s": med_fast,
        "median_scipy_loop_s": med_loop,
        "speedup": ratio,
        "batched_cpu_s": c_fast,
        "scipy_loop_cpu_s": c_loop,
        "speedup_cpu_time": cpu_ratio,
        "target": TARGET,
        "target_met": ratio >= TARGET,
        "check": {"images": check, "max_abs_diff": max_abs, "rtol": 1e-4, "atol": 1e-5},
        "env": {"load_average_1min": os.getloadavg()[0], "torch": torch.__version__,
                "scipy": scipy.__version__,
                "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                "python": platform.python_version()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / "filters.json", result)
    md = [
        "## filters",
        "",
        f"48-filter Gabor bank (frequencies {', '.join(map(str, FREQUENCIES))} x {THETAS} orientations x "
        f"phases 0/90° x sigma {SIGMA}, kernels {kh}x{kw}) over {n_img} Fashion-MNIST images "
        "(28x28, 'same' zero padding). Both produce the same [images, 48, 28, 28] responses "
        f"(allclose on {check} images, max |diff| {max_abs:.1e}). Medians of {args.repeats} interleaved "
        "repeats, side by side:",
        "",
        "| method | median s | images/s |",
        "|---|---:|---:|",
        *[f"| {name} | {t:.3f} | {ips:,.0f} |" for name, t, ips in rows],
        "",
        f"**Speed-up: {ratio:.1f}x** wall clock (target >= {TARGET:.0f}x: {verdict}); {cpu_ratio:.1f}x in "
        "process CPU time (all threads counted, so less sensitive to other load on the machine). "
        f"torch {torch.__version__} with {torch.get_num_threads()} thread(s), scipy {scipy.__version__}, "
        f"{os.cpu_count()} CPUs shared with other work (load average {os.getloadavg()[0]:.1f} at the end).",
        "",
        f"Command: `{' '.join(['python', 'benchmarks/filters.py', *sys.argv[1:]])}`",
        "",
    ]
    write_text(RESULTS / "filters.md", "\n".join(md))
    print(f"wrote {RESULTS / 'filters.json'} and {RESULTS / 'filters.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
