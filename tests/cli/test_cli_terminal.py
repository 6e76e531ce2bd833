"""Output piped to a file, as in CI logs: no line broken inside a path or a number; one line per epoch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def _cnnlab(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # a pipe, 80 by default
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.mark.slow
def test_piped_output_keeps_paths_and_numbers_whole_and_counts_epochs_from_one(tmp_path: Path) -> None:
    run = "runs/a folder whose name is long enough to wrap/and a second level of it/run"
    r = _cnnlab(tmp_path, "train", "--data", "sample", "--model", "mnist_cnn", "--epochs", "2",
                "--limit", "120", "--no-progress", "--out", run)
    assert r.returncode == 0, r.stderr[-2000:]
    text = r.stdout + r.stderr
    assert text.count(run) >= 3  # the set-up line, the summary and the resume hint
    assert text.replace("\n", "").count(run) == text.count(run), "a path was broken across lines"
    epochs = [line for line in r.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    rows = (tmp_path / run / "metrics.csv").read_text().splitlines()[1:]
    csv_epochs = [int(line.split(",")[0]) for line in rows]
    assert csv_epochs == [1, 2]
    assert re.search(r"best validation loss \d\.\d{4} at epoch [12] \(validation accuracy \d+\.\d\d%", text)

    r = _cnnlab(tmp_path, "evaluate", run)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stderr.splitlines()
    assert any(re.search(r"accuracy \d+\.\d\d%, loss \d+\.\d{4}", line) for line in lines)
    written = [line for line in lines if line.startswith("Confusion matrix and JSON written to")]
    assert written and f"{run}/evaluation.json" in written[0] and f"{run}/confusion.png" in written[0]
