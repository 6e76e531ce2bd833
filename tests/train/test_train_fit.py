"""fit(): the run folder, identical metrics for equal seeds, resume after a crash, the NaN guard."""

from __future__ import annotations

import json
import math

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from cnnlab.errors import CnnlabError, TrainingError
from cnnlab.train import fit, load_run
from cnnlab.train.callbacks import read_metrics
from cnnlab.train.config import TrainConfig

BASE = {"data": "sample", "model": "mnist_cnn", "limit": 192, "batch_size": 32, "progress": False}


def _cfg(tmp_path, name, **kw):
    return TrainConfig(out=str(tmp_path / name), **{**BASE, "epochs": 3, **kw})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted 3-epoch run shared by the tests below."""
    tmp = tmp_path_factory.mktemp("ref")
    return fit(_cfg(tmp, "ref")), tmp / "ref"


def test_run_folder_holds_everything(reference):
    result, run_dir = reference
    for name in (
        "config.yaml",
        "classes.json",
        "run.json",
        "metrics.csv",
        "timing.csv",
        "curves.png",
        "model.safetensors",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ):
        assert (run_dir / name).is_file(), name
    rows = read_metrics(run_dir / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"}
    assert result.best_val_loss == min(r["val_loss"] for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # it learns
    # the saved config is the one given, with the open learning rate filled in (mnist_cnn: 1e-3)
    assert TrainConfig.from_yaml(run_dir / "config.yaml") == _cfg(run_dir.parent, "ref", lr=1e-3)
    # model.safetensors holds the best checkpoint's weights
    best = torch.load(run_dir / "checkpoints/best.ckpt", weights_only=True)
    exported = load_file(str(run_dir / "model.safetensors"))
    for key, value in exported.items():
        torch.testing.assert_close(value, best["state_dict"][f"model.{key}"], rtol=0, atol=0)
    assert best["epoch"] + 1 == result.best_epoch
    assert json.loads((run_dir / "classes.json").read_text())[0] == "T-shirt/top"


def test_load_run_gives_the_trained_model(reference):
    _, run_dir = reference
    run = load_run(run_dir)
    assert not run.model.training
    assert run.image_size == (1, 28, 28) and len(run.classes) == 10
    from cnnlab.train.evaluate import evaluate, load_eval_data

    dataset, _ = load_eval_data(run)
    result = evaluate(run, dataset)
    rows = read_metrics(run_dir / "metrics.csv")
    best = min(rows, key=lambda r: r["val_loss"])
    # the exported model reproduces the validation loss/accuracy recorded during training
    assert result.loss == pytest.approx(best["val_loss"], rel=1e-4)
    assert result.accuracy == pytest.approx(best["val_acc"], abs=1e-6)


@pytest.mark.parametrize(
    ("name", "damage", "says"),
    [
        ("model.safetensors", lambda b: b[:100], "model.safetensors: damaged"),
        ("run.json", lambda b: b"{", r"run\.json is damaged, not JSON"),
        ("run.json", lambda b: b"{}", r"run\.json: key 'in_chans' is missing"),
    ],
)
def test_damaged_run_files_are_named_in_a_clear_error(reference, tmp_path, name, damage, says):
    import shutil

    _, run_dir = reference
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / name).write_bytes(damage((copy / name).read_bytes()))
    with pytest.raises(CnnlabError, match=says):
        load_run(copy)


def test_same_seed_gives_identical_metrics_csv(reference, tmp_path):
    _, ref_dir = reference
    fit(_cfg(tmp_path, "again"))
    assert (tmp_path / "again/metrics.csv").read_text() == (ref_dir / "metrics.csv").read_text()
    fit(_cfg(tmp_path, "other", seed=1))
    assert (tmp_path / "other/metrics.csv").read_text() != (ref_dir / "metrics.csv").read_text()


class _Crash(L.Callback):
    """Simulates a crash in the middle of the second epoch (after epoch 1's checkpoint)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 2:
            raise RuntimeError("simulated crash")


def test_resume_after_crash_gives_the_uninterrupted_metrics(reference, tmp_path):
    _, ref_dir = reference
    cfg = _cfg(tmp_path, "crash")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(cfg, callbacks=[_Crash()])
    assert [r["epoch"] for r in read_metrics(tmp_path / "crash/metrics.csv")] == [1]
    assert torch.load(tmp_path / "crash/checkpoints/last.ckpt", weights_only=True)["epoch"] == 0
    result = fit(cfg.replace(resume=True))
    assert [m["epoch"] for m in result.metrics] == [1, 2, 3]
    assert (tmp_path / "crash/metrics.csv").read_text() == (ref_dir / "metrics.csv").read_text()


def test_resume_without_checkpoint_or_with_other_options_is_refused(reference, tmp_path):
    with pytest.raises(TrainingError, match=r"^resume: no checkpoint") as exc:
        fit(_cfg(tmp_path, "fresh", resume=True))
    assert exc.value.param == "resume" and exc.value.cli_message().startswith("--resume: no checkpoint")
    _, ref_dir = reference
    with pytest.raises(TrainingError, match=r"`lr` 0\.5") as exc:
        fit(TrainConfig.from_yaml(ref_dir / "config.yaml").replace(resume=True, lr=0.5))
    assert "--lr 0.5 (run: 0.001)" in exc.value.cli_message()


def test_resume_from_a_damaged_checkpoint_is_refused_before_training(reference, tmp_path):
    import shutil

    _, ref_dir = reference
    copy = tmp_path / "copy"
    shutil.copytree(ref_dir, copy)
    last = copy / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:500])  # a copy cut short
    before = (copy / "metrics.csv").read_text()
    cfg = TrainConfig.from_yaml(copy / "config.yaml").replace(out=str(copy), resume=True)
    with pytest.raises(TrainingError, match=r"last\.ckpt is damaged .*with `overwrite`"):
        fit(cfg)
    assert (copy / "metrics.csv").read_text() == before  # nothing was touched


class _PoisonWeights(L.Callback):
    """Injects NaN weights during epoch 2."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def test_nan_loss_stops_with_clear_message_and_keeps_last_good_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, "nan")
    with pytest.raises(TrainingError, match=r"loss = nan .*epoch 2.*last good checkpoint is kept"):
        fit(cfg, callbacks=[_PoisonWeights()])
    last = torch.load(tmp_path / "nan/checkpoints/last.ckpt", weights_only=True)
    assert last["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    assert [r["epoch"] for r in read_metrics(tmp_path / "nan/metrics.csv")] == [1]


def test_diverging_learning_rate_names_lr(tmp_path):
    with pytest.raises(TrainingError, match=r"diverged.*lower `lr` \(now 1000\)") as exc:
        fit(_cfg(tmp_path, "big", lr=1000, optimizer="sgd", epochs=1))  # the largest lr the config accepts
    assert "lower --lr (now 1000) or use --schedule onecycle" in exc.value.cli_message()
    assert not (tmp_path / "big/checkpoints/last.ckpt").exists()


def test_unwritable_out_fails_before_loading_anything(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    def boom(*a, **k):  # training must not even load data
        raise AssertionError("data was loaded before --out was checked")

    monkeypatch.setattr("cnnlab.data.load_data", boom)
    with pytest.raises(CnnlabError, match="--out"):
        fit(TrainConfig(out=str(blocker / "run"), **BASE))


def test_metrics_are_finite_numbers(reference):
    result, _ = reference
    for row in result.metrics:
        assert all(math.isfinite(v) for v in row.values())
        assert 0.0 <= row["val_acc"] <= 1.0
