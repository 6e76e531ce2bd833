"""Kill -9 and resume: what a killed run leaves is readable, cleaned up on the next start, and resumable.

Acceptance 1 of issue 12: training is killed (SIGKILL) at 10 seeded random points across epochs 1-3,
including during checkpoint writes; every resume either completes with a ``metrics.csv`` identical to
the uninterrupted run or refuses with one line; no run folder is ever left unreadable; no temporary
file survives the next start.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _trust import ROOT, cnnlab, one_error_line

from cnnlab._io import _TEMP_NAME
from cnnlab.train import load_run

KILLER = Path(__file__).with_name("_killer.py")
ARGS = ["train", "--data", "sample", "--model", "mnist_cnn", "--limit", "48", "--batch-size", "16",
        "--epochs", "3", "--no-progress"]


def _temps(run: Path) -> list[Path]:
    return [p for p in run.rglob(".*") if _TEMP_NAME.match(p.name)]


def _killed_run(out: Path, log: Path, kill_at: int) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(KILLER), str(log), str(kill_at), "--", *ARGS, "--out", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)


def _readable(run: Path) -> None:
    """Every file a killed run left parses with the reader cnnlab uses for it (temporary files aside)."""
    from PIL import Image
    from safetensors.torch import load_file

    from cnnlab.runfolder.schema import check_checkpoint, read_classes, read_info
    from cnnlab.train import TrainConfig
    from cnnlab.train.callbacks import read_metrics

    if (run / "config.yaml").exists():
        TrainConfig.from_yaml(run / "config.yaml")
    classes = read_classes(run / "classes.json") if (run / "classes.json").exists() else None
    if (run / "run.json").exists():
        assert classes is not None, "run.json without classes.json"
        read_info(run / "run.json", classes)
    if (run / "metrics.csv").exists():
        read_metrics(run / "metrics.csv")
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        if not _TEMP_NAME.match(ckpt.name):  # a killed writer's temporary file: removed at the next start
            check_checkpoint(ckpt, fix="-")
    if (run / "model.safetensors").exists():
        load_file(str(run / "model.safetensors"))
    if (run / "curves.png").exists():
        Image.open(run / "curves.png").verify()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, str, str]]]:
    """The uninterrupted run, counted: its folder and every event (index, kind, file) in order."""
    tmp = tmp_path_factory.mktemp("kill")
    run, log = tmp / "reference", tmp / "reference.log"
    done = _killed_run(run, log, 0)
    assert done.returncode == 0, done.stderr[-3000:]
    events = [line.split(" ", 2) for line in log.read_text().splitlines()]
    return run, [(int(i), kind, name) for i, kind, name in events]


def _kill_and_resume(reference: Path, run: Path, point: int) -> str:
    """Kill a run at ``point``, check what it left, resume it; returns "resumed" or "refused"."""
    killed = _killed_run(run, run.with_suffix(".log"), point)
    assert killed.returncode == -9, (point, killed.stderr[-2000:])
    _readable(run)  # never unreadable, even with half-written temporary files beside
    resumed = cnnlab(*ARGS, "--out", str(run), "--resume")
    assert not _temps(run), (point, _temps(run))  # the next start removed them
    _readable(run)
    if resumed.returncode == 0:
        assert (run / "metrics.csv").read_text() == (reference / "metrics.csv").read_text(), point
        load_run(run)
        return "resumed"
    assert resumed.returncode == 2, resumed.stderr[-3000:]
    line = one_error_line(resumed.stderr)
    says = r"error: --resume: no checkpoint in .* start the run (without --resume|again with --overwrite)$"
    assert re.match(says, line), line  # killed before anything was written, or before the first checkpoint
    return "refused"


@pytest.mark.slow
def test_sigkill_at_ten_seeded_points_then_resume(reference, tmp_path: Path) -> None:
    ref_dir, events = reference
    ckpt = [i for i, _, name in events if name.endswith(".ckpt")]
    batches = [i for i, kind, _ in events if kind == "batch"]
    other = [i for i, kind, name in events if kind != "batch" and not name.endswith(".ckpt")]
    rng = random.Random(12)
    points = sorted(rng.sample(ckpt, 4) + rng.sample(batches, 3) + rng.sample(other, 3))
    what = {i: f"{kind} {name}" for i, kind, name in events}
    outcomes = {f"{p} {what[p]}": _kill_and_resume(ref_dir, tmp_path / f"kill{p}", p) for p in points}
    assert list(outcomes.values()).count("resumed") >= 6, outcomes


def test_a_kill_in_epoch_1_after_best_ckpt_resumes_from_it(reference, tmp_path: Path) -> None:
    """Killed as the first ``last.ckpt`` is published: ``best.ckpt`` of epoch 1 is the only checkpoint."""
    ref_dir, events = reference
    point = next(i for i, kind, name in events if kind == "replace" and name == "last.ckpt")
    assert any(kind == "replace" and name == "best.ckpt" and i < point for i, kind, name in events)
    assert _kill_and_resume(ref_dir, tmp_path / "first", point) == "resumed"


def test_orphan_temps_are_removed_and_resume_of_a_finished_run_has_nothing_to_do(copy_run) -> None:
    import socket

    run = copy_run()
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # a process that has ended
    orphans = [run / f".metrics.csv.{host}-{dead}.abcd1234.tmp.csv",
               run / "checkpoints" / f".last.ckpt.{host}-{dead}.wxyz5678.tmp.ckpt"]
    for p in orphans:
        p.write_bytes(b"half a checkpoint")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p not in orphans}
    proc = cnnlab("train", "--data", "sample", "--model", "mnist_cnn", "--limit", "64", "--batch-size", "32",
                  "--epochs", "2", "--no-progress", "--out", str(run), "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = " ".join(proc.stderr.split())
    assert text.startswith(f"Nothing to do: {run} has already trained 2 of 2 epoch(s)"), text
    assert "Trained 2 epoch(s)" not in text and "--epochs 12" in text
    assert not any(p.exists() for p in orphans)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing written
