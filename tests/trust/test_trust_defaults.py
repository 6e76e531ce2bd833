"""Defaults that work: the first ``cnnlab train --data FOLDER`` of a new user trains, and learns.

At issue 12, ``cnnlab train --data FOLDER --epochs 1`` crashed with "mat1 and mat2 shapes cannot be
multiplied" (photo folders are decoded at 150 px, the default model ``mnist_cnn`` takes 28 px), and
``cats_cnn`` at the default learning rate (Adam 1e-3) sat at chance for epochs. At issue 21 the default on
photos became the pretrained ``efficientnet_lite0`` with ``transfer`` features (``cats_cnn`` from scratch
ended 3 epochs at chance, 51.5%); the course CNN stays the default on MNIST-like data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _trust import cnnlab, one_error_line

from cnnlab.errors import ModelError
from cnnlab.train import TrainConfig, fit
from cnnlab.train.config import default_model
from cnnlab.train.preflight import apply_model_defaults


@pytest.mark.slow
def test_train_on_a_photo_folder_without_model_transfers_the_pretrained_backbone(
    photo_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = cnnlab("train", "--data", str(photo_folder), "--epochs", "1", "--out", str(out),
                  env={"CNNLAB_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = " ".join(proc.stderr.split())
    assert ("note: model efficientnet_lite0 with its offline pretrained ImageNet weights, transfer features"
            in text) and "(the course's CNN: `--model cats_cnn`); choose another with --model" in text
    assert "input 3x224x224" in text and "(features)" in text
    saved = yaml.safe_load((out / "config.yaml").read_text())  # recorded: the run reproduces as it ran
    chosen = (saved["model"], saved["pretrained"], saved["transfer"])
    assert chosen == ("efficientnet_lite0", True, "features")
    assert (out / "model.safetensors").is_file()
    # not on a terminal: the phases before the first epoch are plain lines, in order
    lines = proc.stderr.splitlines()
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch 1/1"))
    decode = next(i for i, line in enumerate(lines) if line.startswith(f"decoding {photo_folder} ..."))
    embed = next(i for i, line in enumerate(lines) if line.startswith("embeddings: train ..."))
    assert decode < embed < first_epoch
    assert lines[-1].startswith("verdict: ")  # the run ends with its verdict


def test_train_on_small_grayscale_images_keeps_the_course_cnn(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from cnnlab.train.defaults import default_choice

    for name in ("three", "seven"):
        (tmp_path / "digits" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((28, 28), 40 * i, np.uint8), mode="L").save(tmp_path / "digits" / name /
                                                                                 f"{i}.png")
    choice = default_choice(str(tmp_path / "digits"))
    assert (choice.model, choice.pretrained, choice.img_size) == ("mnist_cnn_gap", False, 28)
    assert "small grayscale images" in choice.reason and "wrong tool" in choice.reason
    cfg = TrainConfig(data=str(tmp_path / "digits"))
    assert (cfg.model, cfg.transfer.value, cfg.img_size) == ("mnist_cnn_gap", "scratch", 28)


def test_default_model_fits_the_data() -> None:
    assert default_model("sample") == default_model("mnist") == default_model("fashion-mnist") == "mnist_cnn"
    assert default_model("sample", img_size=64) == "mnist_cnn_gap"  # flatten head: 28 px only
    assert default_model("sample", img_size=28) == "mnist_cnn"
    assert default_model("/some/photos") == default_model("list.csv") == "efficientnet_lite0"
    photos = TrainConfig(data="/some/photos")
    chosen = (photos.model, photos.pretrained, photos.transfer.value)
    assert chosen == ("efficientnet_lite0", True, "features")
    assert TrainConfig(data="/some/photos", transfer="full").transfer.value == "full"  # a typed mode stays
    named = TrainConfig(data="/some/photos", model="resnet18")
    assert (named.model, named.pretrained, named.transfer.value) == ("resnet18", False, "scratch")


def test_recommended_learning_rate_only_when_lr_is_open() -> None:
    cfg, notices = apply_model_defaults(TrainConfig(model="cats_cnn"))
    assert cfg.lr == 3e-4 and len(notices) == 1 and "recommended for cats_cnn" in notices[0]
    cfg, notices = apply_model_defaults(TrainConfig(model="cats_cnn", lr=0.01))
    assert cfg.lr == 0.01 and notices == []  # typed: kept, nothing said
    cfg, notices = apply_model_defaults(TrainConfig(model="mnist_cnn"))
    assert cfg.lr == 1e-3 and notices == []  # no recommendation: cnnlab's default, silently


def test_an_explicit_model_that_does_not_fit_is_one_line_before_decoding(
    photo_folder: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    proc = cnnlab("train", "--data", str(photo_folder), "--model", "mnist_cnn", "--epochs", "1",
                  "--out", str(tmp_path / "run"), env={"CNNLAB_CACHE_DIR": str(cache)})
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "the data's 3x150x150 images do not fit mnist_cnn" in line
    assert "layer head.fc1 (Linear) takes 576 values, gets 73,984" in line and "--img-size 28" in line
    assert not (cache / "decoded").exists() and not any(cache.glob("decoded-*"))  # refused before decoding
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_a_model_too_big_for_the_images_names_the_layer(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"1x28x28 images are too small for cats_cnn: the size runs out at "
                                         r"layer features\.block4\.conv \(Conv2d\), whose input is 128x1x1"):
        fit(TrainConfig(data="sample", model="cats_cnn", limit=8, epochs=1, out=str(tmp_path / "r")))
    assert not (tmp_path / "r" / "config.yaml").exists()


@pytest.mark.slow
def test_cats_cnn_from_scratch_learns_at_its_recommended_learning_rate(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real cats-vs-dogs photos (800 + 200), `--model cats_cnn`, other options default: above chance in 8
    epochs.

    Recorded on the 2 shared CPU cores (seed 0, deterministic): validation accuracy 50.5, 55.0, 51.5, 50.0,
    52.5, 71.5, 71.0, 56.5% and validation loss down to 0.641 at epoch 8. At Adam's 1e-3 the same net stays
    at chance for 6+ epochs (BENCHMARKS.md, accuracy).
    """
    from cnnlab.train.callbacks import read_metrics

    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    result = fit(TrainConfig(data=str(data_dir / "cats-vs-dogs"), model="cats_cnn", epochs=8, progress=False,
                             out=str(tmp_path / "cats")))
    saved = TrainConfig.from_yaml(tmp_path / "cats" / "config.yaml")
    assert saved.model == "cats_cnn" and saved.lr == 3e-4 and saved.batch_size == 64
    accs = [r["val_acc"] for r in read_metrics(tmp_path / "cats" / "metrics.csv")]
    # 200 validation photos, 100 per class: chance is 50% (+-7% at two standard deviations)
    assert max(accs) >= 0.62, accs
    # ln 2 = 0.693 is a coin flip. The loss is the mean over images (issue 21): 0.669 here, where the mean of
    # batch means (the last batch of 8 images weighing as much as one of 64) said 0.641.
    assert result.best_val_loss < 0.68, result.best_val_loss


@pytest.mark.slow
def test_the_default_on_real_photos_is_good_and_cats_cnn_for_one_epoch_is_at_chance(
    data_dir: Path, tmp_path: Path
) -> None:
    """The issue's acceptance: `cnnlab train --data cats-vs-dogs --epochs 3` without --model >= 95%, verdict
    good; `--model cats_cnn --epochs 1` ends with a line saying "chance" and a fix, and its report opens with
    that verdict; training's best validation loss is evaluate's (within 1e-4)."""
    import json

    from cnnlab.report.assemble import build_report
    from cnnlab.report.document import Facts

    env = {"CNNLAB_CACHE_DIR": str(tmp_path / "cache")}
    photos = str(data_dir / "cats-vs-dogs")
    proc = cnnlab("train", "--data", photos, "--epochs", "3", "--out", str(tmp_path / "lite0"), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "note: model efficientnet_lite0" in proc.stderr and "transfer features" in proc.stderr
    info = json.loads((tmp_path / "lite0" / "run.json").read_text())
    assert info["verdict"]["status"] == "good" and info["verdict"]["accuracy"] >= 0.95, info["verdict"]
    proc = cnnlab("train", "--data", photos, "--model", "cats_cnn", "--epochs", "1", "--out",
                  str(tmp_path / "cats"), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "chance" in last and "fix: train longer" in last, last
    for run in ("lite0", "cats"):
        ev = cnnlab("evaluate", str(tmp_path / run), "--json", env=env)
        assert ev.returncode == 0, ev.stderr[-3000:]
        best = json.loads((tmp_path / run / "run.json").read_text())["best_val_loss"]
        assert abs(json.loads(ev.stdout)["loss"] - best) < 1e-4, (run, json.loads(ev.stdout)["loss"], best)
    first = build_report([tmp_path / "cats"]).runs[0].sections[0]
    assert first.title == "Verdict" and dict(first.blocks[0].items)["verdict"].startswith("at chance")
    assert isinstance(first.blocks[0], Facts)
