"""The report as data: six sections from a run folder, numbers that match their sources, missing inputs."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.errors import CnnlabError
from cnnlab.report.assemble import SECTION_TITLES, build_report, default_output
from cnnlab.report.context import RunContext
from cnnlab.report.document import Facts, Gallery, Missing, Picture, Section, Table, Text
from cnnlab.report.sec_evaluation import confusion_order, largest_confusions
from cnnlab.report.tiles import explain_images


def _blocks(section: Section, kind: type) -> list:
    return [b for b in section.blocks if isinstance(b, kind)]


def _sections(report) -> dict[str, Section]:
    (run,) = report.runs
    return {s.title: s for s in run.sections}


@pytest.fixture(scope="module")
def report(run_dir: Path):
    steps: list[tuple[str, int, int]] = []
    rep = build_report([run_dir], on_step=lambda what, done, total: steps.append((what, done, total)))
    rep.steps = steps  # type: ignore[attr-defined]
    return rep


def test_six_sections_all_computed_from_the_run(report) -> None:
    assert SECTION_TITLES == ("Run", "Data", "Model", "Training", "Evaluation", "Inside the network")
    sections = _sections(report)
    assert tuple(sections) == SECTION_TITLES
    for title, sec in sections.items():
        assert not _blocks(sec, Missing), f"{title}: {_blocks(sec, Missing)}"
    # progress: one step per section, counting up to the total
    assert [d for _, d, _ in report.steps] == [0, *range(7)] and {t for *_, t in report.steps} == {6}
    assert report.steps[0][0].endswith("loading the model") and report.steps[-1][0] == "done"


def test_every_picture_is_a_png_of_its_recorded_size(report) -> None:
    pictures = report.pictures()
    # sample grid, curves, confusion, kernels, 1 image + 3 feature maps, 2 filter figures, galleries of 2 each
    assert len(pictures) >= 10 + 2 * 16 + 2 * 10
    for p in pictures:
        with Image.open(io.BytesIO(p.png)) as im:
            assert im.format == "PNG" and im.size == (p.width, p.height) and min(im.size) > 0


def test_header_names_the_model_the_time_and_the_command(report, run_dir: Path) -> None:
    run = _sections(report)["Run"]
    facts = dict(_blocks(run, Facts)[0].items)
    info = json.loads((run_dir / "run.json").read_text())
    assert facts["model"] == "mnist_cnn" and facts["data"] == "sample"
    assert facts["parameters"].startswith(f"trainable {info['params']['trainable']:,}, frozen 0")
    seconds = sum(float(line.split(",")[1]) for line in (run_dir / "timing.csv").read_text().splitlines()[1:])
    assert f"{seconds:.1f} s" in facts["wall time"]
    assert f"--out {run_dir}" in run.blocks[1].text and "--limit 120" in run.blocks[1].text


def test_data_section_counts_every_class_of_both_splits(report, run_dir: Path) -> None:
    from cnnlab.data import load_data

    bundle = load_data("sample", limit=120)
    table = _blocks(_sections(report)["Data"], Table)[0]
    assert [r[0] for r in table.rows] == [*bundle.classes, "total"]
    assert [r[1] for r in table.rows[:-1]] == bundle.train.class_counts()
    assert [r[2] for r in table.rows[:-1]] == bundle.val.class_counts()
    assert table.rows[-1][1:] == (len(bundle.train), len(bundle.val))


def test_model_table_is_the_summary(report, run_dir: Path) -> None:
    from cnnlab.summary import summarize
    from cnnlab.train import load_run

    s = summarize(load_run(run_dir).model, (1, 28, 28))
    table = _blocks(_sections(report)["Model"], Table)[0]
    rows = [r for r in s.layers if r.depth > 0]
    assert len(table.rows) == len(rows)
    conv = next(i for i, r in enumerate(rows) if r.name == "features.block2.conv")
    assert table.rows[conv][3] == f"{rows[conv].params:,}" and table.rows[conv][6] == str(
        rows[conv].field.rf[0]
    )


def test_evaluation_matches_evaluate_and_top_losses_their_probabilities(report, run_dir: Path) -> None:
    from cnnlab.train import load_run
    from cnnlab.train.evaluate import evaluate, load_eval_data

    run = load_run(run_dir)
    val, _ = load_eval_data(run)
    ev = evaluate(run, val, top_losses=16)
    sec = _sections(report)["Evaluation"]
    assert dict(_blocks(sec, Facts)[0].items)["accuracy"].startswith(f"{ev.accuracy:.2%} of {len(val):,}")
    tiles = _blocks(sec, Gallery)[0].tiles
    assert len(tiles) == 16
    # the probabilities on the tiles are the model's own: -log p(true class) is the image's loss
    ctx = RunContext(run_dir)
    index = [int(t["index"]) for t in ev.top_losses]
    ex = explain_images(ctx, index)
    with torch.no_grad():
        direct = torch.softmax(run.model(run.preprocess.normalize(val.images[index])), dim=1)
    torch.testing.assert_close(ex.probs, direct, atol=1e-5, rtol=1e-4)
    for k, t in enumerate(ev.top_losses):
        assert -math.log(float(ex.probs[k, ex.labels[k]])) == pytest.approx(t["loss"], rel=1e-4, abs=1e-5)
        assert tiles[k].lines[0] == f"#{t['index']}" and tiles[k].lines[1].startswith(f"true {t['label']}: ")
        assert tiles[k].lines[2].startswith(f"predicted {t['predicted']}: ")


def test_confusion_is_sorted_past_30_classes_and_largest_cells_listed() -> None:
    rng = np.random.default_rng(0)
    conf = rng.integers(0, 5, (40, 40)) + np.diag(rng.integers(0, 50, 40))
    order = confusion_order(conf.tolist())
    recall = conf.diagonal() / conf.sum(1)
    assert order == sorted(range(40), key=lambda i: (recall[i], i))
    assert confusion_order(conf[:10, :10].tolist()) == list(range(10))
    names = [f"c{i}" for i in range(40)]
    top = largest_confusions(conf.tolist(), names, 5)
    off = conf.astype(float) - np.diag(np.full(40, np.inf))
    flat = np.argsort(-off, axis=None, kind="stable")[:5]
    assert [c for *_, c, _ in top] == [int(off.flat[i]) for i in flat]
    i, j = divmod(int(flat[0]), 40)
    assert top[0][:3] == (f"c{i}", f"c{j}", int(conf[i, j]))


def test_inside_the_network_marks_dead_channels_and_shows_every_class(report, run_dir: Path) -> None:
    from cnnlab.data import load_data
    from cnnlab.interpret import feature_maps
    from cnnlab.train import load_run

    sec = _sections(report)["Inside the network"]
    captions = [p.caption for p in _blocks(sec, Picture)]
    assert captions[0].startswith(
        "the learned kernels of the first layer, features.block1.conv (all 32 kernels)"
    )
    fm_captions = [c for c in captions if "dead channels" in c]
    assert [c.split(":")[0] for c in fm_captions] == [f"features.block{i}.relu" for i in (1, 2, 3)]
    run, val = load_run(run_dir), load_data("sample", limit=120).val
    fm = feature_maps(run.model, run.preprocess.normalize(val.images[:1])[0], "features.block3.relu")
    dead = [int(i) for i in fm.dead.nonzero().flatten()]
    assert fm_captions[2].endswith(", ".join(map(str, dead)) if dead else "none")
    assert (
        sum(
            "inputs that maximise" in p.alt or "filter visualisations" in p.alt for p in _blocks(sec, Picture)
        )
        == 2
    )
    cam = _blocks(sec, Gallery)[0]
    assert len(cam.tiles) == 2 * 10  # two validation images of each class
    assert [t.lines[1].split(":")[0] for t in cam.tiles] == [
        f"true {c}" for c in val.classes for _ in range(2)
    ]


def test_missing_inputs_are_one_line_each_and_the_rest_still_renders(run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "metrics.csv").unlink()
    rep = build_report([run], data=str(tmp_path / "no-such-folder"))
    sections = _sections(rep)
    for title in ("Training", "Evaluation"):
        assert len(sections[title].blocks) == 1 and isinstance(sections[title].blocks[0], Missing), title
    (data,) = _blocks(
        sections["Data"], Missing
    )  # the counts, grids and skipped files need the data: said once
    assert "no-such-folder" in data.reason and not _blocks(sections["Data"], Picture)
    assert "metrics.csv" in sections["Training"].blocks[0].reason
    inside = sections["Inside the network"]
    assert len(_blocks(inside, Missing)) == 1  # feature maps and Grad-CAM need the data: said once
    assert len(_blocks(inside, Picture)) == 3  # kernels and two filter visualisations need only the model
    assert not _blocks(sections["Model"], Missing)
    header = dict(_blocks(sections["Run"], Facts)[0].items)
    assert header["data shown here"].startswith(str(tmp_path / "no-such-folder"))


def test_without_data_the_evaluation_comes_from_evaluation_json(run_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cnnlab.cli import app

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    assert CliRunner().invoke(app, ["evaluate", str(run)]).exit_code == 0
    doc = json.loads((run / "evaluation.json").read_text())
    (run / "model.safetensors").unlink()
    sec = _sections(build_report([run]))["Evaluation"]
    assert isinstance(sec.blocks[0], Text) and "evaluation.json" in sec.blocks[0].text
    assert dict(_blocks(sec, Facts)[0].items)["accuracy"].startswith(f"{doc['accuracy']:.2%}")
    assert len(_blocks(sec, Missing)) == 1 and "model.safetensors" in _blocks(sec, Missing)[0].reason


def test_two_runs_are_compared(run_dir: Path, augmented_run: Path) -> None:
    rep = build_report([run_dir, augmented_run])
    assert [r.name for r in rep.runs] == ["plain", "augmented"]  # the shortest names that differ
    assert [r.path for r in rep.runs] == [str(run_dir.resolve()), str(augmented_run.resolve())]
    assert rep.comparison is not None
    table = _blocks(rep.comparison, Table)[0]
    assert [r[0] for r in table.rows] == ["plain", "augmented"]
    assert [r[4] for r in table.rows] == ["none", "standard"]
    for row, run in zip(table.rows, (run_dir, augmented_run), strict=True):
        acc = [float(line.split(",")[4]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
        assert row[5] == len(acc) and row[7] == f"{max(acc):.2%}"
    assert len(_blocks(rep.comparison, Picture)) == 1
    plain, augmented = ({s.title: s for s in r.sections}["Data"] for r in rep.runs)
    assert [p.caption.split(",")[0] for p in _blocks(augmented, Picture)][1].startswith("6 training images")
    assert "'standard' preset" in _blocks(augmented, Picture)[1].caption and len(_blocks(plain, Picture)) == 1
    assert default_output([run_dir, augmented_run]) == run_dir.parent.parent / "report.html"
    assert default_output([run_dir]) == run_dir / "report.html"


def test_a_folder_that_is_not_a_run_fails_the_report(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(CnnlabError, match="not a cnnlab run folder"):
        build_report([tmp_path])
    with pytest.raises(CnnlabError, match="more than once"):
        build_report([run_dir, run_dir])


def test_run_labels_are_the_shortest_names_that_differ(tmp_path: Path) -> None:
    from cnnlab.report.assemble import run_labels

    assert run_labels([tmp_path / "runs" / "a", tmp_path / "runs" / "b"]) == ["a", "b"]
    assert run_labels([tmp_path / "x" / "run", tmp_path / "y" / "run"]) == ["x/run", "y/run"]
    assert run_labels([Path("runs/demo/run")]) == ["runs/demo/run"]


def test_skipped_files_are_listed_with_their_reason(run_dir: Path, tmp_path: Path) -> None:
    from cnnlab.report.sec_data import data_section

    folder = tmp_path / "shirts"
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("a", "b"):
            (folder / split / name).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8), mode="L").save(
                    folder / split / name / f"{i}.png"
                )
    broken = folder / "train" / "a" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    sec = data_section(RunContext(run_dir, data=str(folder)))
    counts, skipped = _blocks(sec, Table)
    assert counts.rows[-1] == ("total", 6, 6)
    assert skipped.columns == ("skipped file", "reason") and len(skipped.rows) == 1
    assert skipped.rows[0][0] == str(broken) and skipped.rows[0][1]
