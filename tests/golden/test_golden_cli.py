"""Golden files for every ``--json`` contract and the ``summary`` text, on the demo run.

The demo (``cnnlab demo``) trains ``mnist_cnn`` on the embedded sample with a fixed seed; every command
that prints ``--json`` then runs on that run folder as a user types it (a real process, relative paths
from the working folder, so the documents hold no temporary path). Each output must equal its file in
``tests/golden/files`` byte for byte. Regenerate on purpose only: ``pytest tests/golden --update-golden``.

Every process runs with pinned numerics (:data:`PINNED`) so that the bits do not follow the machine: one
thread (the split of a parallel sum changes its last bits; checked: the same bytes on 1 and 2 cores),
oneDNN's SSE4.1 kernels and ATen's scalar ones (wider vector units round differently), MKL in its
reproducible mode. Unpinned, the demo trained a different model on the machine that first wrote the files
than on an AVX2 one (validation accuracy 0.738 against 0.74). Where a file still differs, the failure says
whether only numbers differ (this machine's numerics) or the text around them (the contract).
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "files"

#: The numerics every golden process runs with (see the module docstring).
PINNED = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_CBWR": "COMPATIBLE",
    "CUDA_VISIBLE_DEVICES": "",
}

pytestmark = pytest.mark.slow


def _cnnlab(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **PINNED, "COLUMNS": "200", "CNNLAB_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    cwd = tmp_path_factory.mktemp("golden")
    r = _cnnlab(cwd, "demo", "--out", "demo")
    assert r.returncode == 0, r.stderr[-3000:]
    return cwd, r


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _check(name: str, text: str, update: bool) -> None:
    path = GOLDEN / name
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.is_file(), f"{path} is missing: write it on purpose with pytest --update-golden"
    expected = path.read_text()
    if text == expected:
        return
    same_text = _NUMBER.sub("<n>", text) == _NUMBER.sub("<n>", expected)
    what = "only numbers differ: this machine's numerics?" if same_text else "the text around numbers differs"
    diff = difflib.unified_diff(expected.splitlines(), text.splitlines(), "golden", "now", lineterm="", n=1)
    pytest.fail(f"{name} differs from its golden file ({what}; regenerate only on purpose)\n"
                + "\n".join(list(diff)[:60]))


# (golden file, arguments): every --json contract, on the demo run and its images.
JSON_COMMANDS = [
    ("models.json", ["models", "--json"]),
    ("data_sample.json", ["data", "sample", "--json", "--out", "data-out"]),
    ("filters_gabor.json", ["filters", "--bank", "gabor", "--json", "--out", "gabor.png"]),
    ("summary_mnist_cnn.json", ["summary", "mnist_cnn", "--input", "1x28x28", "--json"]),
    ("summary_cats_cnn.json", ["summary", "cats_cnn", "--json"]),
    ("summary_run.json", ["summary", "demo/run", "--json"]),
    ("evaluate_run.json", ["evaluate", "demo/run", "--json"]),
    ("predict_run.json", ["predict", "demo/run", "demo/images", "--json", "--top-k", "3"]),
    ("explain_run.json", ["explain", "demo/run", "demo/images", "--json", "--out", "x/cam.png",
                          "--channels", "3", "--faithfulness"]),
    ("features_run.json", ["features", "demo/run", "demo/images/T-shirt-top.png", "--json",
                           "--out", "x/fm.png"]),
    ("features_channel_run.json", ["features", "demo/run", "demo/images", "--channel", "2", "--json",
                                   "--out", "x/fm2.png"]),
    ("dream_run.json", ["dream", "demo/run", "--layer", "Conv2d:-1", "--filters", "0-3", "--steps", "8",
                        "--json", "--out", "x/dream.png"]),
]


@pytest.mark.parametrize(("name", "args"), JSON_COMMANDS, ids=[n for n, _ in JSON_COMMANDS])
def test_json_contract_is_unchanged(demo, name: str, args: list[str], update_golden: bool) -> None:
    cwd, _ = demo
    r = _cnnlab(cwd, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    _check(name, r.stdout, update_golden)


@pytest.mark.parametrize("target", ["mnist_cnn", "cats_cnn", "demo/run"])
def test_summary_text_is_unchanged(demo, target: str, update_golden: bool) -> None:
    cwd, _ = demo
    r = _cnnlab(cwd, "summary", target)
    assert r.returncode == 0, r.stderr[-3000:]
    _check(f"summary_{Path(target).name}.txt", r.stdout, update_golden)


def _without_timings(text: str) -> str:
    """Demo output with wall times, rates and progress-bar widths taken out (they vary run to run)."""
    text = re.sub(r"━+", "━", text)
    text = re.sub(r"\d+:\d\d:\d\d", "<t>", text)
    text = re.sub(r"[\d.,]+ ?it/s", "<rate>", text)
    text = re.sub(r"img/s: [\d.,]+", "img/s: <rate>", text)
    text = re.sub(r"\b\d+(\.\d+)? s\b", "<t> s", text)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line) + "\n"


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_demo_output_is_unchanged_apart_from_timings(demo, stream: str, update_golden: bool) -> None:
    _, r = demo
    _check(f"demo_{stream}.txt", _without_timings(getattr(r, stream)), update_golden)


def test_demo_report_is_one_file_under_8_mb(demo) -> None:
    """The demo ends with its run's report (issue 13: under 8 MB); the time is measured by hand, not here."""
    cwd, r = demo
    page = cwd / "demo" / "report.html"
    assert page.is_file() and 100_000 < page.stat().st_size < 8_000_000
    assert "$ cnnlab report demo/run --out demo/report.html" in r.stderr
