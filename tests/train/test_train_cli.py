"""`cnnlab train/evaluate/predict` from the command line: exit codes, JSON shapes, DDP on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.train.callbacks import read_metrics

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--data", "sample", "--model", "mnist_cnn", "--limit", "128", "--batch-size", "32", "--no-progress"]


def _cnnlab(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    proc = _cnnlab("train", *TINY, "--epochs", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"The run folder is {out}" in " ".join(proc.stderr.split())
    return out


def test_unwritable_out_exits_2_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = _cnnlab("train", *TINY, "--out", str(blocker / "run"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --out") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_evaluate_json_shape(trained_run):
    proc = _cnnlab("evaluate", str(trained_run), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"accuracy", "loss", "per_class", "confusion", "top_losses", "weights", "verdict"}
    assert doc["weights"] == "trained"
    assert doc["verdict"]["status"] in ("good", "at chance", "doubtful")  # the verdict of the kept weights
    assert proc.stderr.strip().splitlines()[-1] == doc["verdict"]["line"]  # printed last, on stderr
    classes = json.loads((trained_run / "classes.json").read_text())
    assert list(doc["per_class"]) == classes
    assert all(set(v) == {"precision", "recall", "f1", "support"} for v in doc["per_class"].values())
    matrix = doc["confusion"]
    assert len(matrix) == len(classes) and all(len(row) == len(classes) for row in matrix)
    support = [doc["per_class"][c]["support"] for c in classes]
    assert [sum(row) for row in matrix] == support  # rows add up to the class counts
    diag = sum(matrix[i][i] for i in range(len(classes)))
    assert doc["accuracy"] == pytest.approx(diag / sum(support))
    keys = {"index", "label", "predicted", "loss", "confidence"}
    assert doc["top_losses"] and set(doc["top_losses"][0]) == keys
    assert all(0.0 < t["confidence"] <= 1.0 for t in doc["top_losses"])  # the predicted class's probability
    losses = [t["loss"] for t in doc["top_losses"]]
    assert losses == sorted(losses, reverse=True) and losses[0] >= doc["loss"]
    assert (trained_run / "confusion.png").is_file() and (trained_run / "evaluation.json").is_file()


def test_predict_json_on_files_and_folder(trained_run, tmp_path):
    from cnnlab.data import load_data
    from cnnlab.images import save_image

    bundle = load_data("sample", limit=4)
    folder = tmp_path / "imgs"
    for i in range(3):
        save_image(folder / f"img{i}.png", bundle.val.images[i])
    proc = _cnnlab(
        "predict", str(trained_run), str(folder), str(folder / "img0.png"), "--top-k", "3", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [Path(d["path"]).name for d in doc] == ["img0.png", "img1.png", "img2.png", "img0.png"]
    for d in doc:
        probs = [p["probability"] for p in d["predictions"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert doc[0] == doc[3]
    # the same images through the library (in-memory tensors) give the same probabilities
    from cnnlab.train import load_run
    from cnnlab.train.evaluate import predict

    lib = predict(load_run(trained_run), bundle.val.images[:3], top_k=3)
    for d, p in zip(doc, lib, strict=False):
        assert [x["class"] for x in d["predictions"]] == [c for c, _ in p.top_k]
        assert [x["probability"] for x in d["predictions"]] == pytest.approx(
            [v for _, v in p.top_k], abs=1e-6
        )


def test_predict_skips_and_lists_broken_files_in_a_folder(trained_run, tmp_path):
    from cnnlab.data import load_data
    from cnnlab.images import save_image

    folder = tmp_path / "mixed"
    save_image(folder / "good.png", load_data("sample", limit=4).val.images[0])
    good = (folder / "good.png").read_bytes()
    (folder / "cut.png").write_bytes(good[: len(good) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("not a photo")
    proc = _cnnlab("predict", str(trained_run), str(folder), "--json", "--batch-size", "2")  # 2 batches
    assert proc.returncode == 0, proc.stderr
    assert [Path(d["path"]).name for d in json.loads(proc.stdout)] == ["good.png"]
    for name in ("cut.png", "empty.png", "text.jpg"):
        assert f"skipped {folder / name}" in " ".join(proc.stderr.split()), proc.stderr
    only_bad = _cnnlab("predict", str(trained_run), str(folder / "text.jpg"))
    assert only_bad.returncode == 2 and "no readable image" in only_bad.stderr
    assert "Traceback" not in proc.stderr + only_bad.stderr


@pytest.mark.parametrize(
    "args", [["predict", "{run}", "{img}", "--batch-size", "0"], ["evaluate", "{run}", "--top-losses", "-1"]]
)
def test_out_of_range_counts_are_refused(trained_run, tmp_path, args):
    from cnnlab.data import load_data
    from cnnlab.images import save_image

    img = tmp_path / "one.png"
    save_image(img, load_data("sample", limit=4).val.images[0])
    proc = _cnnlab(*[a.format(run=trained_run, img=img) for a in args])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and args[-2] in proc.stderr


def test_predict_missing_file_is_a_one_line_error(trained_run, tmp_path):
    proc = _cnnlab("predict", str(trained_run), str(tmp_path / "nope.png"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "nope.png" in proc.stderr


@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_two_processes_on_cpu_write_one_run_folder(tmp_path):
    out = tmp_path / "ddp"
    proc = _cnnlab(
        "train", *TINY, "--epochs", "1", "--out", str(out),
        "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu",
        env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # one run folder
    rows = read_metrics(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1]  # written once, by rank 0
    assert " ".join(proc.stderr.split()).count("The run folder is") == 1  # one summary
    ckpt = torch.load(out / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 0 and ckpt["state_dict"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    timing = (out / "timing.csv").read_text().splitlines()
    assert len(timing) == 2


@pytest.mark.slow
def test_sigkill_after_epoch_1_then_resume_matches_uninterrupted(tmp_path):
    import signal
    import time

    args = [*TINY, "--limit", "640", "--epochs", "3"]
    ref = _cnnlab("train", *args, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr[-2000:]
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "train", *args, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "checkpoints/last.ckpt").is_file():
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    done = [r["epoch"] for r in read_metrics(out / "metrics.csv")]
    assert done and done[-1] < 3, "the run finished before it could be killed"
    resumed = _cnnlab("train", "--out", str(out), "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (out / "metrics.csv").read_text() == (tmp_path / "ref/metrics.csv").read_text()
