"""The verdict (cnnlab.train.verdict): each check on a crafted run that triggers it and one that does not."""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.report.plots import overfitting_onset
from cnnlab.train.verdict import DUPLICATE_COSINE, Verdict, judge, near_duplicates

CLASSES = ["cat", "dog"]


def _rows(val: list[float], train: list[float] | None = None) -> list[dict[str, float]]:
    train = train or [v + 0.05 for v in val]
    return [{"epoch": i + 1, "train_loss": t, "train_acc": 0.5, "val_loss": v, "val_acc": 0.5, "lr": 1e-3}
            for i, (v, t) in enumerate(zip(val, train, strict=True))]


def _checks(v: Verdict) -> set[str]:
    return {f.check for f in v.findings}


FLAT = _rows([0.30, 0.29, 0.291])  # no longer improving, no overfitting
GOOD = dict(accuracy=0.95, confusion=[[95, 5], [5, 95]])  # 200 images, 100 a class


def test_a_good_run_has_no_finding() -> None:
    v = judge(FLAT, classes=CLASSES, **GOOD, train_counts={"cat": 400, "dog": 400})
    assert v.status == "good" and v.findings == () and v.chance == 0.5
    assert v.line() == "verdict: good: 95.0% validation accuracy (chance 50.0%)"


def test_accuracy_at_the_majority_rate_is_chance_with_a_fix() -> None:
    v = judge(FLAT, classes=CLASSES, accuracy=0.55, confusion=[[60, 40], [50, 50]], run="runs/c")
    assert v.status == "at chance" and "chance" in _checks(v)
    assert "not above the majority-class rate 50.0%" in v.line() and "fix: train longer" in v.line()
    assert "--model efficientnet_lite0 --pretrained --transfer features" in v.line()  # not pretrained: say so
    pre = judge(FLAT, classes=CLASSES, accuracy=0.55, confusion=[[60, 40], [50, 50]], pretrained=True)
    assert "--pretrained" not in pre.line()  # already pretrained: not suggested again
    # 0.62 of 200 is above 0.5 + 2 standard errors (0.571): learned something
    learned = judge(FLAT, classes=CLASSES, accuracy=0.62, confusion=[[62, 38], [38, 62]])
    assert "chance" not in _checks(learned)


def test_one_class_predicted_for_nearly_every_image_is_chance() -> None:
    # the cats_cnn run: 'dog' for 197 of 200 images
    v = judge(FLAT, classes=CLASSES, accuracy=0.515, confusion=[[3, 97], [0, 100]])
    assert v.status == "at chance" and "'dog' is predicted for 197 of 200 images" in v.line()
    # the same share is fine when that class is the data itself (92% dogs)
    ok = judge(FLAT, classes=CLASSES, accuracy=0.99, confusion=[[14, 2], [0, 184]])
    assert "chance" not in _checks(ok)


def test_a_training_loss_at_ln_classes_is_chance() -> None:
    at = _rows([0.70, 0.69], train=[0.70, math.log(2) * 1.005])
    assert "chance" in _checks(judge(at, classes=CLASSES))  # from the loss alone, no evaluation needed
    below = _rows([0.70, 0.69], train=[0.70, math.log(2) * 0.95])
    assert "chance" not in _checks(judge(below, classes=CLASSES))


def test_a_falling_validation_loss_says_train_longer() -> None:
    v = judge(_rows([0.5, 0.3, 0.2]), classes=CLASSES, **GOOD, run="runs/a")
    assert v.status == "good" and "improving" in _checks(v)
    assert "train longer (`cnnlab train --out runs/a --resume --epochs 6`)" in v.line()
    assert "improving" not in _checks(judge(FLAT, classes=CLASSES, **GOOD))


def test_overfitting_names_its_epoch_and_the_kept_epoch() -> None:
    rows = _rows([0.5, 0.3, 0.31, 0.4, 0.5, 0.6], train=[0.5, 0.3, 0.2, 0.1, 0.05, 0.02])
    v = judge(rows, classes=CLASSES, **GOOD)
    (f,) = [f for f in v.findings if f.check == "overfitting"]
    # the curves' marker (smoothed minimum at epoch 3); the weights kept are the lowest loss's, epoch 2
    assert overfitting_onset([r["val_loss"] for r in rows], [r["train_loss"] for r in rows]) == 2
    assert "overfitting from epoch 3" in f.message and "the kept weights are epoch 2's" in f.message
    assert "overfitting" not in _checks(judge(FLAT, classes=CLASSES, **GOOD))


def test_class_imbalance_and_classes_never_predicted() -> None:
    v = judge(FLAT, classes=CLASSES, **GOOD, train_counts={"cat": 900, "dog": 100})
    assert "class imbalance: 900 training images of 'cat', 100 of 'dog' (9.0x)" in v.line()
    assert "imbalance" not in _checks(judge(FLAT, classes=CLASSES, **GOOD, train_counts={"cat": 5, "dog": 4}))
    three = ["a", "b", "c"]
    never = judge(FLAT, classes=three, accuracy=0.66, confusion=[[90, 10, 0], [10, 90, 0], [50, 50, 0]])
    assert never.status == "doubtful" and "never predicted: c (1 of 3 classes)" in never.line()
    assert "never_predicted" not in _checks(
        judge(FLAT, classes=three, accuracy=0.9, confusion=[[90, 5, 5], [5, 90, 5], [5, 5, 90]]))


def test_confident_mistakes_are_listed_as_possible_label_errors() -> None:
    keys = ("path", "label", "predicted", "loss", "confidence")
    tops = [dict(zip(keys, row, strict=True)) for row in (
        ("/d/val/cat/cat.17.jpg", "cat", "dog", 4.1, 0.98),
        ("/d/val/dog/dog.3.jpg", "dog", "cat", 0.9, 0.6),
        ("/d/val/dog/dog.9.jpg", "dog", "dog", 0.5, 0.95),
    )]
    v = judge(FLAT, classes=CLASSES, **GOOD, top_losses=tops)
    (f,) = [f for f in v.findings if f.check == "label_errors"]
    assert f.files == ("/d/val/cat/cat.17.jpg",) and "cat.17.jpg (cat -> dog 98%)" in f.message
    assert "label_errors" not in _checks(judge(FLAT, classes=CLASSES, **GOOD, top_losses=tops[1:]))


def test_near_duplicates_across_the_splits_are_leakage() -> None:
    g = torch.Generator().manual_seed(0)
    train = torch.randn(50, 64, generator=g)
    val = torch.randn(10, 64, generator=g)
    val[3] = train[7] * 2 + 0.01 * torch.randn(64, generator=g)  # the same image, brighter: cosine ~1
    tf, vf = [f"train/{i}.jpg" for i in range(50)], [f"val/{i}.jpg" for i in range(10)]
    pairs = near_duplicates(train, val, tf, vf)
    assert [(a, b) for a, b, _ in pairs] == [("train/7.jpg", "val/3.jpg")] and pairs[0][2] > DUPLICATE_COSINE
    v = judge(FLAT, classes=CLASSES, **GOOD, duplicates=pairs)
    assert v.status == "doubtful" and "leakage: 1 validation image(s)" in v.line()
    assert v.findings[0].files == ("train/7.jpg <-> val/3.jpg",)
    assert near_duplicates(train, torch.randn(10, 64, generator=g), tf, vf) == []  # random: no pair
    assert "leakage" not in _checks(judge(FLAT, classes=CLASSES, **GOOD))


@pytest.mark.parametrize("status", ["good", "at chance"])
def test_the_verdict_as_json(status: str) -> None:
    acc, conf = (0.95, [[95, 5], [5, 95]]) if status == "good" else (0.5, [[100, 0], [100, 0]])
    d = judge(FLAT, classes=CLASSES, accuracy=acc, confusion=conf).to_dict()
    assert d["status"] == status and d["line"].startswith(f"verdict: {status}")
    assert Verdict.from_dict(d).to_dict() == d  # read back from run.json as written
    assert all(set(f) == {"check", "message", "fix", "files"} for f in d["findings"])


@pytest.mark.slow
def test_training_best_validation_loss_is_evaluate_loss_and_the_run_ends_with_a_verdict(tmp_path) -> None:
    """The mean over images on both sides (the epoch loss was the mean of the batch means: batches of
    32, 32, 32 and 4 images weighed alike) and the verdict of the kept weights recorded in run.json."""
    import json

    from cnnlab.train import TrainConfig, fit, load_run
    from cnnlab.train.evaluate import evaluate, load_eval_data

    result = fit(TrainConfig(data="sample", model="mnist_cnn", limit=100, batch_size=32, epochs=2,
                             progress=False, out=str(tmp_path / "run")))
    run = load_run(tmp_path / "run")
    val, _ = load_eval_data(run)
    assert len(val) % 32 != 0  # a smaller last batch: where a mean of batch means differs
    ev = evaluate(run, val)
    assert abs(ev.loss - result.best_val_loss) < 1e-4, (ev.loss, result.best_val_loss)
    best = next(r for r in result.metrics if r["epoch"] == result.best_epoch)
    assert abs(ev.accuracy - best["val_acc"]) < 1e-6
    assert result.verdict is not None and result.verdict.accuracy == ev.accuracy
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())
    assert recorded["verdict"] == result.verdict.to_dict()
    assert result.summary().endswith(result.verdict.line())
    assert recorded["wall_seconds"] > sum(r["seconds"] for r in _timing(tmp_path / "run"))  # the whole run
    again = fit(TrainConfig(data="sample", model="mnist_cnn", limit=100, batch_size=32, epochs=2,
                            progress=False, out=str(tmp_path / "run"), resume=True))
    assert again.already_done and again.summary().endswith(result.verdict.line())  # "Nothing to do" too


def _timing(run):  # type: ignore[no-untyped-def]
    from cnnlab.train.callbacks import TIMING_COLUMNS, read_metrics

    return read_metrics(run / "timing.csv", TIMING_COLUMNS)


def test_a_series_run_is_told_in_series_words_with_series_fixes() -> None:
    rows = _rows([0.5, 0.3, 0.31, 0.4, 0.5, 0.6], train=[0.5, 0.3, 0.2, 0.1, 0.05, 0.02])
    top = [{"label": "cat", "predicted": "dog", "confidence": 0.99, "index": 7}]
    series = judge(rows, classes=CLASSES, **GOOD, top_losses=top, series=True)
    images = judge(rows, classes=CLASSES, **GOOD, top_losses=top)
    assert "`--augment series`" in series.line() and "`--augment standard`" in images.line()
    assert "1 series predicted wrong" in series.line() and "1 image(s) predicted wrong" in images.line()
    at_chance = dict(accuracy=0.5, confusion=[[0, 100], [0, 100]])
    assert "predicted for 200 of 200 series" in judge(FLAT, classes=CLASSES, **at_chance, series=True).line()
    assert "efficientnet_lite0" in judge(FLAT, classes=CLASSES, **at_chance).line()
    grey = judge(FLAT, classes=CLASSES, **at_chance, backbone=False)
    assert "efficientnet_lite0" not in grey.line()  # MNIST-like data, series: the wrong tool


def test_the_backbone_is_suggested_on_photos_only(tmp_path) -> None:
    from PIL import Image

    from cnnlab.train.config import TrainConfig
    from cnnlab.train.verdict_run import _backbone_suits

    for cls in ("a", "b"):
        (tmp_path / "photos" / cls).mkdir(parents=True)
        Image.new("RGB", (120, 90), (9, 99, 199)).save(tmp_path / "photos" / cls / "x.jpg")
    assert _backbone_suits(TrainConfig(data=str(tmp_path / "photos")))
    assert not _backbone_suits(TrainConfig(data="fashion-mnist"))
    assert not _backbone_suits(TrainConfig(data="ucr:GunPoint"))


def test_a_recorded_verdict_is_the_newest_and_a_damaged_one_is_named(tmp_path) -> None:
    import json
    import os

    from cnnlab.errors import CnnlabError
    from cnnlab.train.verdict_run import read_verdict

    good = judge(FLAT, classes=CLASSES, **GOOD).to_dict()
    chance = judge(FLAT, classes=CLASSES, accuracy=0.5, confusion=[[0, 100], [0, 100]]).to_dict()
    assert read_verdict(tmp_path) is None
    (tmp_path / "evaluation.json").write_text(json.dumps({"verdict": chance}))
    (tmp_path / "run.json").write_text(json.dumps({"verdict": good}))
    os.utime(tmp_path / "evaluation.json", (1_000, 1_000))  # evaluated, then training resumed
    assert read_verdict(tmp_path)["status"] == "good"
    os.utime(tmp_path / "run.json", (500, 500))
    assert read_verdict(tmp_path)["status"] == "at chance"
    for damage in ({"status": "great"}, {"status": "good", "accuracy": "high"}, [1], {"findings": [1]}):
        (tmp_path / "evaluation.json").write_text(json.dumps({"verdict": damage}))
        with pytest.raises(CnnlabError, match=r"evaluation\.json: key 'verdict' is not a verdict"):
            read_verdict(tmp_path)
