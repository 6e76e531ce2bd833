"""Never lose a run: no command writes over the files ``train`` wrote; ``train`` replaces no run unasked.

Issue 20 (lost data): ``train --out R`` on a finished run, without ``--resume``, replaced all of it with
exit 0 (a 2-epoch model at 45% became a 1-epoch model at 11.7%), and ``report R --out R/config.yaml`` wrote
HTML over the run's config. The hash test runs every other command against one run folder, hostile
output paths included, then ``train`` on it without ``--resume``/``--overwrite``, and compares the bytes of
every file ``train`` wrote.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
from _trust import invoke, refused

from cnnlab.runfolder.folder import TRAIN_FILES


def _hashes(run: Path) -> dict[str, str]:
    """SHA-256 of each file ``train`` wrote (``lr_find.png`` only with ``--lr find``: not in these runs)."""
    found = {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in TRAIN_FILES
             if (run / name).is_file()}
    assert len(found) >= len(TRAIN_FILES) - 1, sorted(found)
    return found


@pytest.fixture(scope="module")
def run(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run of this module's own (the session's one stays untouched)."""
    dest = tmp_path_factory.mktemp("lost") / "R"
    shutil.copytree(tiny_run, dest)
    return dest


@pytest.fixture(scope="module")
def image(run: Path) -> Path:
    from cnnlab.data import load_data
    from cnnlab.images import save_image

    return save_image(run.parent / "x.png", load_data("sample", limit=1).val.images[0])


TRAIN = ["train", "--data", "sample", "--model", "mnist_cnn", "--limit", "64", "--batch-size", "32",
         "--no-progress"]


def test_train_into_a_finished_run_is_refused_and_says_what_is_there(run: Path) -> None:
    before = _hashes(run)
    line = refused(invoke(*TRAIN, "--epochs", "1", "--out", str(run)))
    assert f"--out {run} holds a finished run (mnist_cnn on sample, 2 epochs)" in line, line
    assert "--resume" in line and "--overwrite" in line and "new --out" in line
    assert _hashes(run) == before


def test_train_into_a_partial_run_is_refused_too(copy_run) -> None:
    partial = copy_run("partial")
    for name in ("model.safetensors", "checkpoints/best.ckpt"):
        (partial / name).unlink()
    lines = (partial / "metrics.csv").read_text().splitlines()
    (partial / "metrics.csv").write_text("\n".join(lines[:2]) + "\n")  # killed in epoch 2
    line = refused(invoke(*TRAIN, "--epochs", "2", "--out", str(partial)))
    says = ("holds an unfinished run (mnist_cnn on sample: 1 of 2 epochs in metrics.csv; "
            "checkpoints: last.ckpt)")
    assert says in line, line


def test_overwrite_replaces_the_run_and_its_results_nothing_else(copy_run) -> None:
    old = copy_run("old")
    (old / "evaluation.json").write_text("{}")  # the old run's results go with it
    (old / "notes.txt").write_text("mine")  # the user's own file stays
    result = invoke(*TRAIN, "--epochs", "1", "--out", str(old), "--overwrite")
    assert result.exit_code == 0, result.stderr[-3000:]
    assert (old / "metrics.csv").read_text().count("\n") == 2  # header + the one new epoch
    assert not (old / "evaluation.json").exists() and (old / "notes.txt").read_text() == "mine"
    line = refused(invoke(*TRAIN, "--epochs", "1", "--out", str(old), "--overwrite", "--resume"))
    assert "give one of them" in line


def test_overwrite_clears_the_old_runs_event_files_and_finder_figure_and_records_nothing_of_itself(
        copy_run) -> None:
    old = copy_run("logged")
    (old / "tensorboard").mkdir()
    (old / "tensorboard" / "events.out.tfevents.old").write_bytes(b"old run")  # would mix with the new
    (old / "lr_find.png").write_bytes(b"old curve")
    (old / "explain.png").write_bytes(b"old model's map")
    result = invoke(*TRAIN, "--epochs", "1", "--out", str(old), "--overwrite")
    assert result.exit_code == 0, result.stderr[-3000:]
    assert not (old / "tensorboard").exists() and not (old / "lr_find.png").exists()
    assert not (old / "explain.png").exists()
    from cnnlab.train import TrainConfig

    saved = TrainConfig.from_yaml(old / "config.yaml")  # rerunning the saved config replaces nothing
    assert saved.overwrite is False and saved.resume is False


def test_overwrite_on_a_folder_without_a_run_deletes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("report.html", "evaluation.json", "model.onnx"):  # the user's, though named like ours
        (folder / name).write_text("mine")
    result = invoke(*TRAIN, "--epochs", "1", "--out", str(folder), "--overwrite")
    assert result.exit_code == 0, result.stderr[-3000:]
    assert all((folder / n).read_text() == "mine" for n in ("report.html", "evaluation.json", "model.onnx"))


def test_the_finder_figure_and_event_files_are_never_written_over(run: Path, image: Path) -> None:
    for target in (run / "lr_find.png", run / "tensorboard" / "x.png"):
        line = refused(invoke("explain", str(run), str(image), "--out", str(target)))
        assert "of the run folder" in line and "`cnnlab train`" in line, line


def test_a_failed_overwrite_keeps_the_old_run(copy_run) -> None:
    old = copy_run("kept")
    before = _hashes(old)
    refused(invoke(*TRAIN, "--epochs", "1", "--img-size", "4000", "--out", str(old), "--overwrite"))
    assert _hashes(old) == before


def test_report_out_config_yaml_is_refused_at_once(run: Path) -> None:
    start = time.perf_counter()
    line = refused(invoke("report", str(run), "--out", str(run / "config.yaml")))
    assert time.perf_counter() - start < 20  # before the slow part (it took 115 s to fail on a folder)
    assert f"--out {run / 'config.yaml'}: that is config.yaml of the run folder {run}" in line, line
    assert "`cnnlab train`" in line


@pytest.mark.parametrize(
    ("args", "file"),
    [
        (["explain", "RUN", "IMG", "--out", "RUN/curves.png"], "curves.png"),
        (["features", "RUN", "IMG", "--out", "RUN/checkpoints/last.ckpt.png"], None),  # not train's: allowed
        (["invariance", "RUN", "--out", "RUN/run.png"], "run.json"),  # its JSON goes beside the figure
        (["rf", "RUN", "--out", "RUN/curves.png"], "curves.png"),
        (["arithmetic", "--out", "RUN/curves.png"], "curves.png"),
        (["filters", "IMG", "--bank", "sobel", "--out", "RUN/curves.png"], "curves.png"),
        (["report", "RUN", "--out", "RUN/checkpoints/best.ckpt"], "checkpoints/best.ckpt"),
        (["report", "RUN", "--out", "RUN/evaluation.json"], "evaluation.json"),  # evaluate's, not report's
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_no_output_path_names_a_file_of_the_run(args: list[str], file: str | None, run: Path,
                                                image: Path) -> None:
    (run / "evaluation.json").write_text("{}")
    argv = [a.replace("RUN", str(run)).replace("IMG", str(image)) for a in args]
    if file is None:
        assert invoke(*argv).exit_code == 0
        return
    assert f"that is {file} of the run folder {run}" in refused(invoke(*argv))


def test_report_out_an_existing_folder_writes_report_html_inside(run: Path, tmp_path: Path) -> None:
    from cnnlab.report.assemble import report_output

    assert report_output([run], tmp_path) == tmp_path / "report.html"
    assert report_output([run]) == run / "report.html"
    assert report_output([run], tmp_path / "r.html") == tmp_path / "r.html"


def _every_command(run: Path, image: Path, tmp: Path) -> list[list[str]]:
    r, i = str(run), str(image)
    return [
        ["summary", r, "--json"],
        ["evaluate", r, "--json", "--top-losses", "2"],
        ["predict", r, i, "--json"],
        ["explain", r, i, "--json", "--out", str(tmp / "e.png")],
        ["features", r, i, "--json", "--out", str(tmp / "f.png")],
        ["dream", r, "--layer", "auto", "--filters", "0-1", "--steps", "2", "--json", "--out",
         str(tmp / "d.png")],
        ["rf", r, "--samples", "2", "--json", "--out", str(tmp / "rf.png")],
        ["arithmetic", r, "--json", "--out", str(tmp / "a.png")],
        ["probe", r, "--no-tsne", "--no-progress", "--map-points", "20", "--json"],
        ["invariance", r, "--max-shift", "1", "--angles", "5", "--json", "--no-progress", "--out",
         str(tmp / "i.png")],
        ["data", "sample", "--json", "--out", r],  # its grids go into the run folder, beside train's files
        ["filters", i, "--bank", "sobel", "--json", "--out", str(run / "sobel.png")],
        ["report", r, "--top-losses", "2"],
        ["export", r],  # RUN/model.onnx, export's own file
        ["train", *TRAIN[1:], "--epochs", "2", "--out", r, "--resume"],  # nothing to do
    ]


def test_every_command_is_run_against_the_run_folder(tmp_path: Path) -> None:
    from typer.main import get_command

    from cnnlab.cli import app

    run = {args[0] for args in _every_command(tmp_path, tmp_path, tmp_path)}
    # models reads no run; demo runs the others; serve is the web page, driven below through its app
    assert run == set(get_command(app).commands) - {"models", "demo", "serve"}  # type: ignore[attr-defined]


HOSTILE = [
    ["report", "RUN", "--out", "RUN/config.yaml"],
    ["explain", "RUN", "IMG", "--out", "RUN/curves.png"],
    ["invariance", "RUN", "--out", "RUN/run.png"],
    ["rf", "RUN", "--out", "RUN/metrics.csv.png"],
    ["export", "RUN", "--out", "RUN/model.safetensors"],
    ["train", *TRAIN[1:], "--epochs", "1", "--out", "RUN"],
    ["train", *TRAIN[1:], "--epochs", "3", "--out", "RUN"],
]


def test_every_command_leaves_the_files_train_wrote_byte_identical(run: Path, image: Path,
                                                                   tmp_path: Path) -> None:
    before = _hashes(run)
    for args in _every_command(run, image, tmp_path):
        result = invoke(*args)
        assert result.exit_code == 0, (args, repr(result.exception), result.stderr[-2000:])
        assert _hashes(run) == before, args
    for args in HOSTILE:
        argv = [a.replace("RUN", str(run)).replace("IMG", str(image)) for a in args]
        result = invoke(*argv)
        assert result.exit_code in (0, 2), (argv, repr(result.exception), result.stderr[-2000:])
        assert _hashes(run) == before, argv
    from fastapi.testclient import TestClient

    from cnnlab.serve import create_app

    with TestClient(create_app(run)) as client:  # the web page over the run
        r = client.post("/api/explain", files={"file": ("x.png", image.read_bytes(), "image/png")})
        assert r.status_code == 200
    assert _hashes(run) == before
    assert json.loads((run / "evaluation.json").read_text())["weights"] == "trained"  # evaluate wrote its own


def test_the_demo_replaces_only_an_earlier_demos_run(copy_run, tmp_path: Path) -> None:
    from cnnlab.runfolder.folder import demo_run_to_replace

    assert demo_run_to_replace(tmp_path / "nothing") is False
    assert demo_run_to_replace(copy_run("demo")) is True  # mnist_cnn on sample: what the demo trains
    mine = tmp_path / "out" / "run"
    mine.parent.mkdir()
    shutil.move(copy_run("mine"), mine)
    config = mine / "config.yaml"
    config.write_text(config.read_text().replace("model: mnist_cnn", "model: mnist_mlp"))
    before = _hashes(mine)
    line = refused(invoke("demo", "--out", str(mine.parent), "--epochs", "1"))
    assert "holds a finished run (mnist_mlp on sample, 2 epochs), not a demo's" in line, line
    assert _hashes(mine) == before and sorted(p.name for p in mine.parent.iterdir()) == ["run"]
