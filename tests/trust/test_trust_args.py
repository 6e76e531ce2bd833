"""Absurd arguments and sizes: one ``error:`` line each, exit status 2, before any memory is taken.

Each case here ended in a traceback at issue 12, or was silently accepted (``dream --size 0``), or asked
for tens of gigabytes (``dream --size 100000`` and ``train --img-size 4000`` were killed by the kernel's
out-of-memory killer, ``summary --input 3x100000x100000`` tried to allocate 120 GB).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _trust import ROOT, cnnlab, one_error_line

IMAGE = "IMAGE"  # replaced by a real image file


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnlab.data import load_data
    from cnnlab.images import save_image

    return save_image(tmp_path_factory.mktemp("img") / "x.png", load_data("sample", limit=1).val.images[0])


TRAIN = ["train", "--data", "sample", "--limit", "8", "--epochs", "1", "--no-progress"]
CASES = [
    ([*TRAIN, "--accelerator", "gpu"], "--accelerator gpu: no such device on this machine"),
    ([*TRAIN, "--accelerator", "foo"], "invalid value for '--accelerator': 'foo' is not one of"),
    ([*TRAIN, "--seed", "-1"], "--seed must be between 0 and 4294967295"),
    ([*TRAIN, "--lr", "nan"], "--lr must be a positive number"),
    ([*TRAIN, "--lr", "inf"], "--lr must be a positive number"),
    ([*TRAIN, "--weight-decay", "nan"], "--weight-decay must be a number >= 0"),
    ([*TRAIN, "--unfreeze", "0"], "--unfreeze must be at least 1"),
    ([*TRAIN, "--devices", "1000"], "--devices 1000: this machine has"),
    ([*TRAIN, "--num-nodes", "2"], "--num-nodes 2: no cluster found"),
    ([*TRAIN, "--img-size", "4000"], "needs about"),
    ([*TRAIN, "--epochs", "ten"], "invalid value for '--epochs'"),
    ([*TRAIN, "--bogus"], "no such option: --bogus"),
    (["explain", "--model", "mnist_cnn", IMAGE, "--out", "e.xyz"],
     "--out e.xyz: matplotlib cannot write .xyz"),
    (["explain", "--model", "mnist_cnn", IMAGE, "--channels", "-1"], "--channels -1: must be at least 0"),
    (["features", "--model", "mnist_cnn", IMAGE, "--max-channels", "0"],
     "--max-channels 0: must be at least 1"),
    (["features", "--model", "mnist_cnn", IMAGE, "--max-channels", "-1"],
     "--max-channels -1: must be at least 1"),
    (["dream", "--model", "mnist_cnn", "--layer", "auto", "--lr", "nan"],
     "--lr nan: must be a positive number"),
    (["dream", "--model", "mnist_cnn", "--layer", "auto", "--size", "0"], "--size 0: must be at least 8"),
    (["dream", "--model", "mnist_cnn", "--layer", "auto", "--steps", "0"], "--steps 0: must be at least 1"),
    (["dream", "--model", "mnist_cnn", "--layer", "auto", "--filters", "0-100000000"],
     "--filters '0-100000000': the layer has 64 filters; use 0..63"),
    (["dream", "--model", "mnist_cnn", "--layer", "auto", "--size", "100000"], "CNNLAB_MAX_MEMORY_GB="),
    (["summary", "mnist_cnn", "--num-classes", "-5"],
     "--num-classes -5: a classifier needs at least 1 output"),
    (["summary", "mnist_cnn", "--num-classes", "0"], "--num-classes 0: a classifier needs at least 1 output"),
    (["summary", "mnist_cnn", "--depth", "-1"],
     "--depth -1: must be at least 0 (0 shows the top-level layers)"),
    (["summary", "cats_cnn", "--input", "3x100000x100000"], "CNNLAB_MAX_MEMORY_GB="),
    (["summary"], "missing argument 'MODEL|RUN'"),
    (["nosuchcommand"], "no such command 'nosuchcommand'"),
]


@pytest.mark.parametrize(("args", "says"), CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_one_line_exit_2(args: list[str], says: str, image: Path, tmp_path: Path) -> None:
    argv = [str(image) if a == IMAGE else a for a in args]
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "run")]
    proc = cnnlab(*argv, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    line = one_error_line(proc.stderr)
    assert says in line, line
    assert not (tmp_path / "run" / "config.yaml").exists()  # refused before the run folder was written


def test_memory_refusals_give_the_limit_and_how_to_raise_it(tmp_path: Path) -> None:
    proc = cnnlab("summary", "cats_cnn", "--input", "3x100000x100000", env={"CNNLAB_MAX_MEMORY_GB": "64"})
    line = one_error_line(proc.stderr)
    assert "over the memory budget of 64.0 GiB (CNNLAB_MAX_MEMORY_GB=64)" in line
    assert "use a smaller --input, or raise the budget with CNNLAB_MAX_MEMORY_GB=" in line
    small = cnnlab("summary", "mnist_cnn", "--json", env={"CNNLAB_MAX_MEMORY_GB": "0.0001"})
    assert small.returncode == 2 and "over the memory budget of" in one_error_line(small.stderr)
    assert cnnlab("summary", "mnist_cnn", "--json").returncode == 0  # the default budget: half the memory
    bad = cnnlab("summary", "mnist_cnn", env={"CNNLAB_MAX_MEMORY_GB": "lots"})
    assert "CNNLAB_MAX_MEMORY_GB='lots': give a positive number of gigabytes" in one_error_line(bad.stderr)


def test_a_missing_data_folder_is_reported_before_the_heavy_imports(tmp_path: Path) -> None:
    """As fast as ``cnnlab --help``: torch (and Lightning) are never imported (no timing asserted)."""
    code = (
        "import sys\n"
        "from cnnlab.cli import app\n"
        "try:\n"
        "    app(['train', '--data', sys.argv[1]], prog_name='cnnlab')\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, sorted(m for m in ('torch', 'lightning', 'numpy') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "no-such-folder")], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.stdout.split() == ["2", "[]"], (proc.stdout, proc.stderr)
    says = f"error: --data {tmp_path / 'no-such-folder'}: no such folder"
    assert one_error_line(proc.stderr).startswith(says)
