"""Embedding cache: same result as training without it, keyed correctly, never re-runs the backbone; logreg.

Its speed (cached epochs against the first) is measured in benchmarks/transfer.py, not here.
"""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transfer_models import TinyNet, resnet18, tiny_images

from cnnlab.data.core import DataBundle, ImageTensorDataset
from cnnlab.data.datamodule import ImageDataModule
from cnnlab.models.surgery import split_head
from cnnlab.train.config import TrainConfig
from cnnlab.train.module import ClassifierModule
from cnnlab.transfer.embeddings import compute_embeddings
from cnnlab.transfer.on_embeddings import EmbeddingHead, LogRegHead, embedding_datamodule, fit_logreg_head
from cnnlab.transfer.policy import FreezePolicy

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)


def _dataset(n: int = 48, size: int = 16, seed: int = 0, classes: int = 3) -> ImageTensorDataset:
    x, y = tiny_images(n, classes=classes, size=size, seed=seed)
    return ImageTensorDataset(x, y, [str(k) for k in range(classes)])


def _trainer(tmp_path: Any, epochs: int, callbacks: list[Any] = ()) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                     deterministic=True, default_root_dir=tmp_path, callbacks=list(callbacks),
                     use_distributed_sampler=False)


def _module(model: torch.nn.Module, trained: torch.nn.Module, cfg: TrainConfig, policy: FreezePolicy,
            num_classes: int = 3) -> ClassifierModule:
    def groups(_: torch.nn.Module) -> list[dict[str, Any]]:
        return policy.param_groups(model, lr=cfg.lr, weight_decay=cfg.weight_decay)

    return ClassifierModule(trained, num_classes=num_classes, config=cfg, param_groups=groups)


@pytest.mark.parametrize("make", [TinyNet, lambda: resnet18(num_classes=4)])
def test_split_head_is_exact(make: Any) -> None:
    model = make().eval()
    f = model.forward_features(torch.rand(3, 3, 32, 32))
    prefix, rest = split_head(model)
    pooled = prefix(f)
    assert pooled.ndim == 2
    assert torch.equal(rest(pooled), model.forward_head(f))
    assert {id(p) for p in EmbeddingHead(model).parameters()} == {id(p) for p in model.head.parameters()}


def test_cache_training_equals_training_without_cache(tmp_path: Any) -> None:
    train_ds, val_ds = _dataset(48, seed=0), _dataset(24, seed=1)
    cfg = TrainConfig(transfer="features", lr=0.05, epochs=3, batch_size=16, seed=0)
    init = TinyNet()  # head with dropout: the random numbers must line up too

    direct = copy.deepcopy(init)  # without the cache: images through the frozen backbone every epoch
    policy = FreezePolicy.from_config(cfg)
    policy.apply(direct)
    bundle = DataBundle("t", ["0", "1", "2"], train_ds, val_ds, (3, 16, 16), [])
    images = ImageDataModule(bundle, batch_size=16, augment="none", mean=MEAN, std=STD, seed=0)
    L.seed_everything(0, verbose=False)
    plain = _module(direct, direct, cfg, policy)
    _trainer(tmp_path / "a", 3, [policy]).fit(plain, datamodule=images)

    cached = copy.deepcopy(init)
    policy = FreezePolicy.from_config(cfg)
    policy.apply(cached)
    kw = {"mean": MEAN, "std": STD, "batch_size": 7, "cache_dir": tmp_path / "cache",
          "key_parts": {"model": "t"}}
    train_e, val_e = compute_embeddings(cached, train_ds, **kw), compute_embeddings(cached, val_ds, **kw)
    L.seed_everything(0, verbose=False)
    on_cache = _module(cached, EmbeddingHead(cached), cfg, policy)
    _trainer(tmp_path / "b", 3).fit(on_cache, datamodule=embedding_datamodule(train_e, val_e, batch_size=16))

    moved = not torch.equal(direct.head[-1].weight, init.head[-1].weight)
    assert moved
    for (name, a), b in zip(direct.head.state_dict().items(), cached.head.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=f"head {name} differs with the cache")
    assert torch.equal(cached.features.state_dict()["s1.0.weight"], init.features.state_dict()["s1.0.weight"])
    for key, value in plain.epoch_metrics.items():
        assert on_cache.epoch_metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_progress_reports_every_batch_and_bar_runs() -> None:
    from cnnlab._progress import progress_bar

    seen: list[tuple[int, int]] = []
    with progress_bar("embeddings", enabled=True) as update:
        assert update is not None

        def both(done: int, total: int) -> None:
            seen.append((done, total))
            update(done, total)

        compute_embeddings(TinyNet(), _dataset(40), mean=MEAN, std=STD, batch_size=16, progress=both)
    assert seen == [(16, 40), (32, 40), (40, 40)]
    with progress_bar("off", enabled=False) as update:
        assert update is None


def test_cache_key_hits_and_misses(tmp_path: Any) -> None:
    model = TinyNet().eval()
    ds = _dataset(20)
    kw = {"mean": MEAN, "std": STD, "cache_dir": tmp_path, "key_parts": {"model": "tiny", "weights": "x"}}
    first = compute_embeddings(model, ds, **kw)
    again = compute_embeddings(model, ds, **kw)
    assert not first.cache_hit and again.cache_hit and again.path == first.path and first.path.is_file()
    assert torch.equal(again.features, first.features) and torch.equal(again.labels, ds.labels)
    feats, labels = again
    assert feats.shape == (20, 16) and torch.equal(labels, ds.labels)

    with torch.no_grad():
        model.head[-1].weight.add_(1.0)  # the head is not part of what is cached
    assert compute_embeddings(model, ds, **kw).cache_hit

    changed_pixel = _dataset(20)
    changed_pixel.images[3, 0, 0, 0] ^= 1
    other_model = copy.deepcopy(model)
    with torch.no_grad():
        other_model.features.s1[0].weight[0, 0, 0, 0] += 1e-3
    misses = [
        compute_embeddings(model, changed_pixel, **kw),
        compute_embeddings(other_model, ds, **kw),
        compute_embeddings(model, ds, **{**kw, "mean": (0.4, 0.4, 0.4)}),
        compute_embeddings(model, ds, **{**kw, "key_parts": {"model": "tiny", "weights": "y"}}),
    ]
    assert all(not m.cache_hit for m in misses)
    assert len({first.path, *(m.path for m in misses)}) == 5
    assert not torch.equal(misses[1].features, first.features)


def test_cached_epochs_never_run_the_backbone_and_a_second_call_hits_the_cache(tmp_path: Any) -> None:
    model = resnet18(num_classes=4)
    train_ds, val_ds = _dataset(96, size=112, classes=4), _dataset(32, size=112, seed=1, classes=4)
    cfg = TrainConfig(transfer="features", lr=0.01, epochs=4, batch_size=32)
    policy = FreezePolicy.from_config(cfg)
    policy.apply(model)
    kw = {"mean": MEAN, "std": STD, "batch_size": 32, "cache_dir": tmp_path,
          "key_parts": {"model": "resnet18"}}
    train_e, val_e = compute_embeddings(model, train_ds, **kw), compute_embeddings(model, val_ds, **kw)
    assert not train_e.cache_hit and not val_e.cache_hit
    backbone_calls = []
    handle = model.features.register_forward_hook(lambda *_: backbone_calls.append(1))
    try:
        module = _module(model, EmbeddingHead(model), cfg, policy, num_classes=4)
        dm = embedding_datamodule(train_e, val_e, batch_size=32)
        _trainer(tmp_path, 4, []).fit(module, datamodule=dm)
        assert backbone_calls == []  # four epochs of training on the cache: the backbone never ran
        hit = compute_embeddings(model, train_ds, **kw)
    finally:
        handle.remove()
    assert hit.cache_hit and backbone_calls == []  # read from the file, not recomputed
    assert torch.equal(hit.features, train_e.features) and torch.equal(hit.labels, train_e.labels)


@pytest.mark.parametrize(("classes", "num_classes"), [(2, 1), (2, 2), (3, 3)])
def test_logreg_head_equals_sklearn(classes: int, num_classes: int) -> None:
    model = TinyNet(num_classes=num_classes).eval()
    train_e = compute_embeddings(model, _dataset(60, classes=classes), mean=MEAN, std=STD)
    val_e = compute_embeddings(model, _dataset(30, seed=3, classes=classes), mean=MEAN, std=STD)
    info = fit_logreg_head(model, train_e, num_classes=num_classes, seed=0)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=0))
    reference.fit(train_e.features.double().numpy(), train_e.labels.numpy())
    expected = torch.from_numpy(reference.predict_proba(val_e.features.double().numpy()))
    with torch.no_grad():
        logits = split_head(model)[1](val_e.features).double()
    probs = torch.sigmoid(logits).reshape(-1) if num_classes == 1 else torch.softmax(logits, dim=1)
    got = probs if num_classes > 1 else torch.stack([1 - probs, probs], dim=1)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    train_x = train_e.features.double().numpy()
    assert info["train_acc"] == pytest.approx(reference.score(train_x, train_e.labels.numpy()))


def test_logreg_callback_fits_then_only_measures(tmp_path: Any) -> None:
    model = TinyNet(num_classes=3)
    cfg = TrainConfig(transfer="features", head="logreg", lr=0.1, epochs=2, batch_size=16)
    policy = FreezePolicy.from_config(cfg)
    policy.apply(model)
    train_e = compute_embeddings(model, _dataset(48), mean=MEAN, std=STD)
    val_e = compute_embeddings(model, _dataset(24, seed=1), mean=MEAN, std=STD)
    dm = embedding_datamodule(train_e, val_e, batch_size=16)
    logreg = LogRegHead(model, dm.train_set, num_classes=3, seed=0)
    module = _module(model, EmbeddingHead(model), cfg, policy)
    _trainer(tmp_path, 2, [logreg]).fit(module, datamodule=dm)
    fitted = copy.deepcopy(model)
    fit_logreg_head(fitted, train_e, num_classes=3, seed=0)
    assert torch.equal(model.head[-1].weight, fitted.head[-1].weight)  # lr 0: the epochs changed nothing
    assert module.epoch_metrics["lr"] == 0.0
    preds = split_head(model)[1].eval()(val_e.features).argmax(1)
    assert module.epoch_metrics["val_acc"] == pytest.approx(float((preds == val_e.labels).float().mean()))
