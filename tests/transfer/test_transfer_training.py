"""Freezing through real training (acceptance 2): frozen BN statistics, --resume, optimizer groups."""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from transfer_models import TinyNet, tiny_images

from cnnlab.train.config import TrainConfig
from cnnlab.train.module import ClassifierModule
from cnnlab.transfer.freezing import requires_grad_map
from cnnlab.transfer.policy import FreezePolicy


def _loaders() -> tuple[DataLoader, DataLoader]:
    x, y = tiny_images(48)
    x = (x.float() / 255 - 0.5) / 0.25
    ds = TensorDataset(x, y)
    return DataLoader(ds, batch_size=16), DataLoader(ds, batch_size=16)


def _trainer(tmp_path: Any, epochs: int, callbacks: list[Any]) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                     deterministic=True, default_root_dir=tmp_path, callbacks=callbacks)


def _setup(cfg: TrainConfig, model: torch.nn.Module) -> tuple[FreezePolicy, ClassifierModule]:
    """What run.fit does: policy applied before the optimizer exists, groups from the policy."""
    policy = FreezePolicy.from_config(cfg)
    policy.apply(model)
    def groups(m: torch.nn.Module) -> list[dict[str, Any]]:
        return policy.param_groups(m, lr=cfg.lr, weight_decay=cfg.weight_decay)

    module = ClassifierModule(model, num_classes=3, config=cfg, param_groups=groups)
    return policy, module


def _bn_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


@pytest.mark.parametrize(("mode", "train_bn", "frozen_prefixes", "trained_prefixes"), [
    ("partial", False, ("features.s1.", "features.s2."), ("features.s3.",)),
    ("features", False, ("features.",), ()),
    ("features", True, (), ("features.s1.", "features.s2.", "features.s3.")),
])
def test_frozen_bn_running_stats_unchanged(
    tmp_path: Any, mode: str, train_bn: bool, frozen_prefixes: tuple[str, ...],
    trained_prefixes: tuple[str, ...],
) -> None:
    model = TinyNet()
    cfg = TrainConfig(transfer=mode, train_bn=train_bn, lr=0.05, epochs=2, batch_size=16)
    policy, module = _setup(cfg, model)
    before_bn = _bn_state(model)
    before_w = {k: v.clone() for k, v in model.state_dict().items()}
    train, val = _loaders()
    _trainer(tmp_path, 2, [policy]).fit(module, train, val)
    after_bn = _bn_state(model)
    checked = 0
    for key, value in after_bn.items():
        if key.startswith(frozen_prefixes):
            assert torch.equal(value, before_bn[key]), f"frozen BN buffer {key} changed"
            checked += 1
        if key.startswith(trained_prefixes) and "running_mean" in key:
            assert not torch.equal(value, before_bn[key]), f"training BN buffer {key} did not update"
    assert checked >= (3 * len(frozen_prefixes) if frozen_prefixes else 0)
    for key, value in model.state_dict().items():
        if key.startswith(frozen_prefixes) and "weight" in key:
            assert torch.equal(value, before_w[key]), f"frozen weight {key} changed"
    assert not torch.equal(model.head[-1].weight, before_w["head.3.weight"])


class _Recorder(L.Callback):
    """Records the requires_grad map in force at each epoch's first training step."""

    def __init__(self) -> None:
        self.maps: dict[int, dict[str, bool]] = {}
        self.groups: list[dict[str, Any]] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:
            self.maps[trainer.current_epoch] = requires_grad_map(pl_module.model)
            self.groups = [{"name": g.get("name"), "lr": g["lr"]} for g in trainer.optimizers[0].param_groups]


@pytest.mark.parametrize("stop_after", [1, 3])
def test_schedule_requires_grad_map_and_weights_survive_resume(tmp_path: Any, stop_after: int) -> None:
    cfg = TrainConfig(transfer="full", fine_tune_epochs=2, epochs=4, lr=0.01, batch_size=16,
                      backbone_lr_mult=0.1)
    init = TinyNet(dropout=0.0)  # weights compared exactly: no random numbers in the steps
    train, val = _loaders()

    full_model = copy.deepcopy(init)
    policy, module = _setup(cfg, full_model)
    full = _Recorder()
    _trainer(tmp_path / "a", 4, [policy, full]).fit(module, train, val)
    features_map, full_map = full.maps[0], full.maps[3]
    assert full.maps[1] == features_map and full.maps[2] == full_map != features_map
    assert sum(features_map.values()) == 2 and all(full_map.values())  # head weight + bias, then everything

    part_model = copy.deepcopy(init)
    policy, module = _setup(cfg, part_model)
    trainer = _trainer(tmp_path / "b", stop_after, [policy])
    trainer.fit(module, train, val)
    ckpt = tmp_path / "last.ckpt"
    trainer.save_checkpoint(ckpt)

    resumed_model = copy.deepcopy(init)  # a fresh process: the policy applies epoch 0's map first
    policy, module = _setup(cfg, resumed_model)
    resumed = _Recorder()
    _trainer(tmp_path / "c", 4, [policy, resumed]).fit(module, train, val, ckpt_path=str(ckpt))
    assert sorted(resumed.maps) == list(range(stop_after, 4))
    for epoch, grads in resumed.maps.items():
        assert grads == full.maps[epoch], f"requires_grad map differs after --resume at epoch {epoch}"
    for key, value in full_model.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    lrs = {g["name"]: g["lr"] for g in resumed.groups}
    assert lrs == {"head": 0.01, "backbone": pytest.approx(0.01 * 0.1)}
