"""Helpers of the trust tests (imported by them and by ``conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: A small, quick run: the embedded sample, 64 images per split, 2 epochs.
TINY = {"data": "sample", "model": "mnist_cnn", "limit": 64, "batch_size": 32, "epochs": 2, "progress": False}


def cnnlab(*args: str, timeout: float = 600, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m cnnlab ARGS`` in a fresh process (what a user types)."""
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, timeout=timeout,
        cwd=cwd or ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "400", **(env or {})},
    )


def one_error_line(stderr: str) -> str:
    """The single ``error:`` line of a failed command (asserting there is exactly one, no traceback)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]
