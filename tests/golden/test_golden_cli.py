"""Golden files for every ``--json`` contract and the ``summary`` text, on a seeded, untrained run.

No training: the run folder ``run/`` is written here with the library from ``mnist_cnn`` initialised with
seed 0 (``config.yaml``, ``classes.json``, ``run.json``, ``model.safetensors``: the files ``fit`` writes),
with three validation images of the embedded sample beside it. Every command that prints ``--json`` runs
on them as a user types it (a real process, relative paths from the working folder, so the documents hold
no temporary path).

Each output is checked in two parts, so that the bits of a CPU's float kernels do not matter: the text with
every number masked must equal the golden file's (the contract: keys, order, strings, shapes of lists), and
the numbers must agree with the file's within :data:`REL` / :data:`ABS` (the numerics: the oneDNN ISA, the
thread count, flushed denormals change last bits, never a contract). The golden tests pass with
``ONEDNN_MAX_CPU_ISA=AVX2`` and without, with 1 or 2 threads and with ``torch.set_flush_denormal(True)``
(``CNNLAB_GOLDEN_FLUSH_DENORMAL=1`` runs every command so; :func:`test_numbers_hold_under_other_numerics`
checks each setting on the CAM record). The demo has an end-to-end test of its own
(``tests/cli/test_cli_demo.py``). Regenerate on purpose only: ``pytest tests/golden --update-golden``.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "files"
#: Relative and absolute tolerance of the numbers (float32 kernels of different ISAs differ by ~1e-7).
REL, ABS = 1e-4, 1e-5
#: Numbers that are positions found by an argmax, with how far a near-tie may move them: the CAM peak of an
#: untrained net sits on a plateau, and mnist_cnn's CAM layer is a 3x3 map on a 28 px input, so a tie
#: between two cells moves it by up to one cell (28 / 3 px); seen with ONEDNN_MAX_CPU_ISA=AVX2 (24 -> 23, 27).
POSITIONS = {"peak_yx": 10}
#: The sample's classes drawn as images (the demo's first picks), written as ``images/<name>.png``.
IMAGES = ("T-shirt/top", "Dress", "Shirt")
#: Runs a command with denormals flushed to zero (a process setting torch has no environment variable for).
_FLUSHED = "import sys, torch; torch.set_flush_denormal(True); from cnnlab.cli import app; app()"

pytestmark = pytest.mark.slow


def _cnnlab(cwd: Path, *args: str, env: dict[str, str] | None = None,
            flush_denormal: bool = False) -> subprocess.CompletedProcess:
    full = {**os.environ, "COLUMNS": "200", "CNNLAB_CACHE_DIR": str(cwd / "cache"),
            "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    flush = flush_denormal or full.get("CNNLAB_GOLDEN_FLUSH_DENORMAL") == "1"
    launcher = ["-c", _FLUSHED] if flush else ["-m", "cnnlab"]
    return subprocess.run([sys.executable, *launcher, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=full)


def _seeded_run(cwd: Path) -> None:
    """``run/``: mnist_cnn with seed-0 weights as a run folder of the sample; ``images/``: three images."""
    import torch

    from cnnlab._io import save_safetensors
    from cnnlab.data import load_data
    from cnnlab.images import save_image
    from cnnlab.runfolder.folder import write_setup
    from cnnlab.train import TrainConfig, build_model

    bundle = load_data("sample")
    cfg = TrainConfig(data="sample", model="mnist_cnn", epochs=1, out="run", seed=0)
    torch.manual_seed(0)
    model = build_model(cfg, in_chans=1, num_classes=len(bundle.classes))
    info = {"model": cfg.model, "num_classes": len(bundle.classes), "in_chans": 1, "head": "linear",
            "mean": [0.0], "std": [1.0], "image_size": list(bundle.image_shape), "notices": []}
    write_setup(cwd / "run", cfg, list(bundle.classes), info)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_safetensors(cwd / "run" / "model.safetensors", state,
                     metadata={"model": cfg.model, "num_classes": str(info["num_classes"])})
    labels = bundle.val.labels.tolist()
    for name in IMAGES:
        index = labels.index(bundle.classes.index(name))
        save_image(cwd / "images" / f"{name.replace('/', '-')}.png", bundle.val.images[index])


@pytest.fixture(scope="module")
def cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("golden")
    (where / "images").mkdir()
    _seeded_run(where)
    return where


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _numbers(doc: Any, where: str = "") -> list[tuple[str, float]]:
    """Every number of a JSON document with where it stands (``images.0.peak_yx.1``)."""
    if isinstance(doc, dict):
        return [n for key, value in doc.items() for n in _numbers(value, f"{where}.{key}")]
    if isinstance(doc, list):
        return [n for i, value in enumerate(doc) for n in _numbers(value, f"{where}.{i}")]
    return [(where, float(doc))] if isinstance(doc, (int, float)) and not isinstance(doc, bool) else []


def _numbers_differ(name: str, text: str, expected: str) -> list[str]:
    """The numbers of ``text`` that are not within tolerance of ``expected``'s (same masked text assumed)."""
    if name.endswith(".json"):
        pairs = zip(_numbers(json.loads(text)), _numbers(json.loads(expected)), strict=True)
    else:
        pairs = zip((("", float(v)) for v in _NUMBER.findall(text)),
                    (("", float(v)) for v in _NUMBER.findall(expected)), strict=True)
    bad = []
    for (where, got), (_, want) in pairs:
        moved = next((px for key, px in POSITIONS.items() if f".{key}." in f"{where}."), None)
        close = math.isclose(got, want, rel_tol=REL, abs_tol=ABS)
        if not (abs(got - want) <= moved if moved is not None else close):
            bad.append(f"{where or 'number'}: {got:g} (golden {want:g})")
    return bad


def _check(name: str, text: str, update: bool) -> None:
    path = GOLDEN / name
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.is_file(), f"{path} is missing: write it on purpose with pytest --update-golden"
    expected = path.read_text()
    if _NUMBER.sub("<n>", text) != _NUMBER.sub("<n>", expected):
        diff = difflib.unified_diff(expected.splitlines(), text.splitlines(), "golden", "now", lineterm="",
                                    n=1)
        pytest.fail(f"{name}: the contract changed (the text around the numbers differs; regenerate only on "
                    "purpose)\n" + "\n".join(list(diff)[:60]))
    bad = _numbers_differ(name, text, expected)
    assert not bad, f"{name}: numbers off by more than rel {REL} / abs {ABS}: {bad[:10]}"


# (golden file, arguments): every --json contract, on the seeded run and its images.
JSON_COMMANDS = [
    ("models.json", ["models", "--json"]),
    ("data_sample.json", ["data", "sample", "--json", "--out", "data-out"]),
    ("filters_gabor.json", ["filters", "--bank", "gabor", "--json", "--out", "gabor.png"]),
    ("summary_mnist_cnn.json", ["summary", "mnist_cnn", "--input", "1x28x28", "--json"]),
    ("summary_cats_cnn.json", ["summary", "cats_cnn", "--json"]),
    ("summary_run.json", ["summary", "run", "--json"]),
    ("evaluate_run.json", ["evaluate", "run", "--json"]),
    ("predict_run.json", ["predict", "run", "images", "--json", "--top-k", "3"]),
    ("explain_run.json", ["explain", "run", "images", "--json", "--out", "x/cam.png", "--channels", "3",
                          "--faithfulness"]),
    ("features_run.json", ["features", "run", "images/T-shirt-top.png", "--json", "--out", "x/fm.png"]),
    ("features_channel_run.json", ["features", "run", "images", "--channel", "2", "--json",
                                   "--out", "x/fm2.png"]),
    ("dream_run.json", ["dream", "run", "--layer", "Conv2d:-1", "--filters", "0-3", "--steps", "8",
                        "--json", "--out", "x/dream.png"]),
]


@pytest.mark.parametrize(("name", "args"), JSON_COMMANDS, ids=[n for n, _ in JSON_COMMANDS])
def test_json_contract_is_unchanged(cwd: Path, name: str, args: list[str], update_golden: bool) -> None:
    r = _cnnlab(cwd, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    _check(name, r.stdout, update_golden)


@pytest.mark.parametrize("target", ["mnist_cnn", "cats_cnn", "run"])
def test_summary_text_is_unchanged(cwd: Path, target: str, update_golden: bool) -> None:
    r = _cnnlab(cwd, "summary", target)
    assert r.returncode == 0, r.stderr[-3000:]
    _check(f"summary_{Path(target).name}.txt", r.stdout, update_golden)


@pytest.mark.parametrize("numerics", ["avx2", "one-thread", "two-threads", "flush-denormal"])
def test_numbers_hold_under_other_numerics(cwd: Path, numerics: str) -> None:
    """The CAM record (logits, maps, deletion/insertion curves) under another CPU setting.

    The same contract, and the same numbers within tolerance.
    """
    env = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "one-thread": {"OMP_NUM_THREADS": "1"},
           "two-threads": {"OMP_NUM_THREADS": "2"}}.get(numerics, {})
    name, args = next((n, a) for n, a in JSON_COMMANDS if n == "explain_run.json")
    r = _cnnlab(cwd, *args, env=env, flush_denormal=numerics == "flush-denormal")
    assert r.returncode == 0, r.stderr[-3000:]
    _check(name, r.stdout, update=False)
