"""Transfer through `fit` and the CLI: run folder counts, embedding cache across runs, schedule + --resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from cnnlab.errors import ModelError
from cnnlab.train.config import TrainConfig
from cnnlab.train.run import fit

BASE = {"data": "sample", "model": "mnist_cnn", "limit": 120, "batch_size": 32, "progress": False, "seed": 0}


def _start_weights(tmp_path: Path, model: str) -> Path:
    """A local weights file to start from (as a user fine-tunes their own net): ``features`` and
    ``partial`` freeze the backbone, so fit refuses them on a random one."""
    from safetensors.torch import save_file

    from cnnlab.models import create_model

    path = tmp_path / f"{model}-start.safetensors"
    if not path.is_file():
        torch.manual_seed(1)
        save_file(create_model(model).state_dict(), str(path))
    return path


def _cfg(tmp_path: Path, name: str, **kw: Any) -> TrainConfig:
    values = {**BASE, "out": str(tmp_path / name), "cache_dir": str(tmp_path / "cache"), **kw}
    if values.get("transfer") in ("features", "partial") and not values.get("pretrained"):
        values["weights"] = str(_start_weights(tmp_path, values["model"]))
    return TrainConfig(**values)


def _files(run: Path) -> tuple[str, dict[str, torch.Tensor]]:
    return (run / "metrics.csv").read_text(), load_file(str(run / "model.safetensors"))


@pytest.mark.slow
def test_features_run_caches_embeddings_and_counts_head_only(tmp_path: Path) -> None:
    first = fit(_cfg(tmp_path, "a", transfer="features", epochs=2))
    cache_files = sorted((tmp_path / "cache").glob("*.safetensors"))
    assert len(cache_files) == 2  # train and val splits
    info = json.loads((first.run_dir / "run.json").read_text())
    from cnnlab.models import create_model

    head_params = sum(p.numel() for p in create_model("mnist_cnn").head.parameters())
    assert info["params"]["trainable"] == head_params == first.params["trainable"]
    assert info["params"]["frozen"] == info["params"]["total"] - head_params

    stamps = [f.stat().st_mtime_ns for f in cache_files]
    second = fit(_cfg(tmp_path, "b", transfer="features", epochs=2))
    assert [f.stat().st_mtime_ns for f in cache_files] == stamps  # read, not rewritten
    (m1, w1), (m2, w2) = _files(first.run_dir), _files(second.run_dir)
    assert m1 == m2
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


@pytest.mark.slow
def test_full_with_fine_tune_schedule_resumes_to_same_result(tmp_path: Path) -> None:
    kw = {"transfer": "full", "fine_tune_epochs": 1, "lr": 2e-3}
    straight = fit(_cfg(tmp_path, "straight", epochs=3, **kw))
    fit(_cfg(tmp_path, "resumed", epochs=2, **kw))
    resumed = fit(_cfg(tmp_path, "resumed", epochs=3, resume=True, **kw))
    (m1, w1), (m2, w2) = _files(straight.run_dir), _files(resumed.run_dir)
    assert m1 == m2, "metrics differ after --resume across the unfreezing epoch"
    for key, value in w1.items():
        torch.testing.assert_close(w2[key], value, rtol=0, atol=0)


@pytest.mark.slow
def test_mlp_and_logreg_heads_train_export_and_load(tmp_path: Path) -> None:
    from cnnlab.data import load_data
    from cnnlab.data.transforms import Normalize
    from cnnlab.models.blocks import MLPHead
    from cnnlab.train import load_run

    mlp = fit(_cfg(tmp_path, "mlp", transfer="features", head="mlp", epochs=1))
    loaded = load_run(mlp.run_dir)  # rebuilds the mlp head: the saved weights must fit it
    assert any(isinstance(m, MLPHead) for m in loaded.model.head.modules())

    logreg = fit(_cfg(tmp_path, "logreg", transfer="features", head="logreg", epochs=2))
    assert [row["lr"] for row in logreg.metrics] == [0.0, 0.0]  # fitted in closed form, epochs only measure
    assert logreg.metrics[0]["val_acc"] == logreg.metrics[1]["val_acc"]
    run = load_run(logreg.run_dir)
    val = load_data("sample", limit=BASE["limit"], seed=0).val
    with torch.no_grad():
        preds = run.model(Normalize(run.mean, run.std)(val.images)).argmax(1)
    accuracy = float((preds == val.labels).float().mean())
    assert accuracy == pytest.approx(logreg.metrics[-1]["val_acc"], abs=1e-6)


BLOCKLESS = "transfer_test_blockless"


def _register_blockless() -> None:
    """A registered model whose blocks are unknown (``blocks == []``), through the public registry."""
    from transfer_models import TinyNet

    from cnnlab.models import list_models, register_model

    if BLOCKLESS not in list_models():
        @register_model(BLOCKLESS, input_size=(1, 28, 28), num_classes=10)
        def _build(*, num_classes: int = 10, in_chans: int = 1, pretrained: bool = False) -> Any:
            return TinyNet(num_classes=num_classes, in_chans=in_chans, blocks=False)


def _cli(args: list[str]) -> tuple[int, str]:
    from typer.testing import CliRunner

    from cnnlab.cli import app

    result = CliRunner().invoke(app, args)
    text = result.output + (getattr(result, "stderr", "") if result.stderr_bytes is not None else "")
    return result.exit_code, text


def test_partial_on_model_without_blocks_names_unfreeze_layers(tmp_path: Path) -> None:
    _register_blockless()
    with pytest.raises(ModelError, match="unfreeze_layers"):
        fit(_cfg(tmp_path, "p", model=BLOCKLESS, transfer="partial", epochs=1))
    code, text = _cli(["train", "--data", "sample", "--model", BLOCKLESS, "--transfer", "partial", "--limit",
                       "40", "--epochs", "1", "--out", str(tmp_path / "cli"), "--no-progress",
                       "--weights", str(_start_weights(tmp_path, BLOCKLESS))])
    assert code == 2 and "error:" in text and "--unfreeze-layers" in text and "Traceback" not in text
    named = fit(_cfg(tmp_path, "named", model=BLOCKLESS, transfer="partial", epochs=1,
                     unfreeze_layers=("features.s3",)))
    from transfer_models import TinyNet

    reference = TinyNet(num_classes=10, in_chans=1, blocks=False).named_parameters()
    assert named.params["trainable"] == sum(
        p.numel() for n, p in reference if n.startswith(("features.s3.", "head."))
    )


def test_pretrained_without_reachable_weights_names_weights_option(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # nothing cached; no network here
    from cnnlab.models import create_model

    with pytest.raises(ModelError, match="`weights` FILE"):
        create_model("resnet18", pretrained=True)
    code, text = _cli(["train", "--data", "sample", "--model", "resnet18", "--pretrained", "--transfer",
                       "features", "--limit", "20", "--epochs", "1", "--out", str(tmp_path / "cli")])
    assert code == 2 and "--weights FILE" in text and "Traceback" not in text


@pytest.mark.slow
def test_grey_data_into_rgb_pretrained_net_adapts_the_stem_with_a_notice(tmp_path: Path) -> None:
    from cnnlab.train import load_run

    result = fit(_cfg(tmp_path, "grey", model="efficientnet_lite0", pretrained=True, transfer="features",
                      img_size=64, limit=30, epochs=1))
    assert any("adapt_input_conv" in n for n in result.notices)
    info = json.loads((result.run_dir / "run.json").read_text())
    assert info["in_chans"] == 1 and info["mean"] == [0.5] and info["std"] == [0.5]  # weights' (0.5,)*3
    model = load_run(result.run_dir).model
    stem = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert stem.in_channels == 1 and model(torch.zeros(1, 1, 64, 64)).shape == (1, 10)
