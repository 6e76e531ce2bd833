"""One model recipe: ``fit`` and ``load_run`` both build the run's network with ``build_model``.

A ``partial`` transfer run is trained (from a local weights file, as a user fine-tunes their own net);
rebuilding it from its folder gives the trained ``requires_grad`` map and the same logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from cnnlab.train import TrainConfig, fit, load_run
from cnnlab.train import recipe as build_module
from cnnlab.train import run as run_module
from cnnlab.transfer.freezing import count_params, requires_grad_map


class _KeepModel(L.Callback):
    """Holds the trained model object (after fit it carries the best weights, as exported)."""

    model: Any = None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.model = pl_module.model


@pytest.fixture
def weights_file(tmp_path: Path) -> Path:
    from safetensors.torch import save_file

    from cnnlab.models import create_model

    torch.manual_seed(1)
    path = tmp_path / "mnist_cnn_start.safetensors"
    save_file(create_model("mnist_cnn").state_dict(), str(path))
    return path


def test_partial_run_rebuilt_from_its_folder_has_the_trained_freezing_and_logits(
    tmp_path: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = build_module.build_model

    def spy(cfg: TrainConfig, **kw: Any) -> Any:
        calls.append("pretrained" if cfg.pretrained else "architecture")
        return real(cfg, **kw)

    monkeypatch.setattr(build_module, "build_model", spy)  # load_run imports it from here
    monkeypatch.setattr(run_module, "build_model", spy)  # fit's own reference
    keep = _KeepModel()
    cfg = TrainConfig(data="sample", model="mnist_cnn", weights=str(weights_file), transfer="partial",
                      unfreeze=1, epochs=2, limit=150, batch_size=32, progress=False,
                      out=str(tmp_path / "run"))
    fit(cfg, callbacks=[keep])
    run = load_run(tmp_path / "run")
    # fit's dry run (on the meta device, before decoding), fit, its verdict (which evaluates the run read
    # back), then load_run: the same function
    assert calls == ["architecture", "pretrained", "architecture", "architecture"]

    # Training ran in channels-last on the CPU (a layout, see TrainConfig.channels_last); compare in NCHW.
    trained = keep.model.eval().to(memory_format=torch.contiguous_format)
    assert requires_grad_map(run.model) == requires_grad_map(trained)
    counts = count_params(run.model)
    head_and_last = sum(p.numel() for n, p in trained.named_parameters()
                        if n.startswith(("head.", "features.block3.")))
    assert counts.trainable == head_and_last and counts.frozen > 0  # partial: last block + head only
    x = run.preprocess.normalize(torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8))
    with torch.no_grad():
        torch.testing.assert_close(run.model(x), trained(x), rtol=0, atol=0)


def test_build_model_follows_the_data_and_the_head_option() -> None:
    from cnnlab.models.blocks import MLPHead

    cfg = TrainConfig(model="mnist_cnn", head="mlp")
    model = build_module.build_model(cfg, in_chans=3, num_classes=4)
    assert model.features.block1.conv.in_channels == 3
    assert any(isinstance(m, MLPHead) for m in model.head.modules())
    assert model(torch.zeros(2, 3, 28, 28)).shape == (2, 4)
    cats = TrainConfig(model="cats_cnn")
    assert build_module.output_count(cats, 2) == 1  # one-logit binary head stays binary
    assert build_module.output_count(cats, 3) == 3


def test_a_layer_spec_string_trains_and_reloads_like_a_registry_model(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cnnlab.cli import app

    spec = "conv:8:3 relu maxpool:2 conv:16:3 relu"
    cfg = TrainConfig(data="sample", model=spec, epochs=1, limit=120, batch_size=32, progress=False,
                      out=str(tmp_path / "spec"))
    assert " " not in cfg.replace(out=None).run_dir.name  # runs/spec-<hash>-sample
    result = fit(cfg)
    run = load_run(result.run_dir)
    assert run.config.model == spec and run.num_classes == 10
    x = run.preprocess.normalize(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    assert run.model(x).shape == (2, 10)
    args = ["train", "--model", "conv:8:3 relu maxpoool:2", "--out", str(tmp_path / "b")]
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 2 and "maxpoool" in bad.output + str(getattr(bad, "stderr", ""))
