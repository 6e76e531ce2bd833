"""A one-logit model (the course's cats network) on a two-class folder: BCE, sigmoid > 0.5, evaluate."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.images import save_image
from cnnlab.train import fit, load_run
from cnnlab.train.callbacks import read_metrics
from cnnlab.train.config import TrainConfig
from cnnlab.train.evaluate import evaluate, load_eval_data, predict


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/ and val/ with classes 'dark' and 'light' (48x48 RGB noise around two brightness levels)."""
    root = tmp_path_factory.mktemp("binary")
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 24), ("val", 8)):
        for name, level in (("dark", 70), ("light", 180)):
            for i in range(n):
                img = (level + 40 * torch.randn(3, 48, 48, generator=g)).clamp(0, 255).to(torch.uint8)
                save_image(root / split / name / f"{i:03d}.png", img)
    return root


@pytest.mark.slow
def test_binary_head_bce_and_evaluation(folder, tmp_path):
    cfg = TrainConfig(data=str(folder), model="cats_cnn", img_size=48, epochs=3, batch_size=16, lr=3e-3,
                      out=str(tmp_path / "run"), progress=False)  # fmt: skip
    result = fit(cfg)
    assert result.num_classes == 1  # cats_cnn keeps its one-logit head on two classes
    info = json.loads((tmp_path / "run/run.json").read_text())
    assert info["num_classes"] == 1 and info["image_size"] == [3, 48, 48]
    rows = read_metrics(tmp_path / "run/metrics.csv")
    run = load_run(tmp_path / "run")
    assert run.binary and run.classes == ["dark", "light"]
    dataset, _ = load_eval_data(run)
    ev = evaluate(run, dataset)
    best = min(rows, key=lambda r: r["val_loss"])
    # evaluation recomputes BCE-with-logits and sigmoid>0.5 accuracy independently of training
    assert ev.loss == pytest.approx(best["val_loss"], rel=1e-4)
    assert ev.accuracy == pytest.approx(best["val_acc"], abs=1e-6)
    with torch.no_grad():
        x = dataset.images.float() / 255.0
        logit = run.model(x).reshape(-1)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logit, dataset.labels.float())
    assert ev.loss == pytest.approx(float(expected), rel=1e-5)
    assert sum(sum(r) for r in ev.confusion) == len(dataset)
    preds = predict(run, dataset.images[:4], top_k=2)
    for p, lg in zip(preds, logit[:4], strict=True):
        probs = dict(p.top_k)
        assert set(probs) == {"dark", "light"}
        assert probs["light"] == pytest.approx(float(torch.sigmoid(lg)), abs=1e-6)
        assert sum(probs.values()) == pytest.approx(1.0)
