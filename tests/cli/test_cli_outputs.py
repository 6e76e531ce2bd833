"""Outputs land where the user looks, and `cnnlab --help` lists the commands in the order of the work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cnnlab(cwd: Path, *args: str, out_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CNNLAB_OUT_DIR": str(out_dir), "CNNLAB_CACHE_DIR": str(cwd / "cache"),
           "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def test_help_lists_the_commands_in_the_order_of_the_work_with_whole_lines(tmp_path: Path) -> None:
    from cnnlab.commands import COMMANDS

    r = _cnnlab(tmp_path, "--help", out_dir=tmp_path / "out")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("Commands:")[1].strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert names[:5] == ["data", "train", "evaluate", "predict", "explain"] and names == list(COMMANDS)
    assert all("..." not in line and len(line) <= 80 for line in lines), lines  # one line each, not cut


@pytest.mark.slow
def test_without_out_explain_features_and_data_write_into_the_run_or_one_folder(tmp_path: Path) -> None:
    work, out = tmp_path / "cwd", tmp_path / "out"
    work.mkdir()
    r = _cnnlab(work, "train", "--data", "sample", "--model", "mnist_cnn", "--epochs", "1", "--limit", "40",
                "--no-progress", "--out", str(tmp_path / "run"), out_dir=out)
    assert r.returncode == 0, r.stderr[-2000:]
    image = tmp_path / "shirt.png"
    from PIL import Image

    Image.new("L", (28, 28), 128).save(image)
    for command in ("explain", "features"):
        r = _cnnlab(work, command, str(tmp_path / "run"), str(image), out_dir=out)
        assert r.returncode == 0, r.stderr[-2000:]
        assert (tmp_path / "run" / f"{command}.png").is_file()
    r = _cnnlab(work, "data", "sample", out_dir=out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "data-sample" / "samples.png").is_file() and str(out / "data-sample") in r.stderr
    assert [p.name for p in work.iterdir() if p.name != "cache"] == []  # nothing in the current directory


def test_an_unusable_out_dir_variable_is_named_not_out(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    r = _cnnlab(tmp_path, "data", "sample", out_dir=a_file)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"error: CNNLAB_OUT_DIR {a_file}: cannot write there"), r.stderr
    assert "give --out" in r.stderr and a_file.read_text() == "mine"
