"""benchmarks/gpu.py: one line and exit 0 without CUDA; its whole check runs (CPU standing in) and passes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check runs instead")
def test_without_cuda_it_skips_in_one_line() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--no-write"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "skipped: no CUDA"


@pytest.mark.slow
def test_the_check_runs_with_the_cpu_standing_in(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--models", "mnist_cnn",
                          "--steps", "3", "--warmup", "1", "--no-write"], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[0])["mnist_cnn"]
    train, cam = found["train"], found["cam"]
    assert train["device"]["steps"] == train["cpu"]["steps"] == 3
    assert train["device"]["losses_finite"] and train["device"]["images_per_s"] > 0
    assert train["device"]["channels_last"] is True
    assert cam["passed"] and cam["max_abs_map_diff"] == 0.0 and cam["images"] == 8  # the same device twice
    assert out.stdout.strip().splitlines()[-1].startswith("passed in ")
