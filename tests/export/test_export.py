"""`cnnlab export`: the file read back by the consumer's own runtime gives PyTorch's logits.

One small trained sample run is shared by the module. The checks read the exported files with onnx,
onnxruntime and torch.jit.load, and take the preprocessing from what the export recorded (the ONNX
metadata, the TorchScript archive's record), not from cnnlab.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from cnnlab.cli import app
from cnnlab.errors import CnnlabError
from cnnlab.export import export_run
from cnnlab.train import fit, load_run
from cnnlab.train.config import TrainConfig
from cnnlab.train.evaluate import load_eval_data

BASE = {"data": "sample", "model": "mnist_cnn", "limit": 200, "batch_size": 32, "epochs": 1,
        "progress": False, "seed": 0}
TOL = 1e-4


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "run"
    fit(TrainConfig(**BASE, out=str(out)))
    return out


def _val(run: Path, n: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` validation images (uint8) and PyTorch's logits for them."""
    loaded = load_run(run)
    dataset, _ = load_eval_data(loaded)
    images, _ = dataset.get_batch(torch.arange(n))
    with torch.no_grad():
        return images, loaded.model(loaded.preprocess.normalize(images))


@pytest.mark.slow
def test_onnx_dynamic_batch_matches_pytorch_under_onnxruntime(run: Path, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    path = tmp_path / "model.onnx"
    result = export_run(run, fmt="onnx", out=path, dynamic_batch=True)
    assert result.check.passed and result.check.batch_sizes == [7, 1] and result.check.images == 20
    assert result.check.max_abs_diff <= TOL and result.check.top1_agreement == 1.0

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    mean, std = np.array(json.loads(meta["mean"])), np.array(json.loads(meta["std"]))
    assert json.loads(meta["input_size"]) == [1, 28, 28] and meta["color_mode"] == "L"
    assert json.loads(meta["classes"]) == load_run(run).classes == json.loads(meta["cnnlab"])["classes"]
    assert json.loads(result.sidecar.read_text()) == json.loads(meta["cnnlab"])

    images, expected = _val(run)
    x = ((images.numpy().astype(np.float32) / 255.0 - mean[None, :, None, None]) / std[None, :, None, None])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for batch in (1, 7):
        chunks = [x[i : i + batch].astype(np.float32) for i in range(0, len(x), batch)]
        assert {len(c) for c in chunks} >= {batch}
        got = torch.from_numpy(np.concatenate([session.run(None, {name: c})[0] for c in chunks]))
        assert got.shape == expected.shape == (20, 10)
        assert float((got - expected).abs().max()) <= TOL, batch
        assert torch.equal(got.argmax(1), expected.argmax(1))


FRESH = r"""
import json, sys
import torch
from safetensors.torch import load_file

path, tensors = sys.argv[1], load_file(sys.argv[2])
extra = {"cnnlab.json": ""}
model = torch.jit.load(path, map_location="cpu", _extra_files=extra)
record = json.loads(extra["cnnlab.json"])
pre = record["preprocessing"]
mean = torch.tensor(pre["mean"]).view(1, -1, 1, 1)
std = torch.tensor(pre["std"]).view(1, -1, 1, 1)
x = (tensors["images"].float() / 255 - mean) / std
worst = {}
with torch.no_grad():
    for batch in (1, 7):
        got = torch.cat([model(c) for c in x.split(batch)])
        worst[batch] = float((got - tensors["expected"]).abs().max())
        assert torch.equal(got.argmax(1), tensors["expected"].argmax(1)), batch
print(json.dumps({"worst": worst, "classes": record["classes"],
                  "cnnlab_imported": any(m.split(".")[0] == "cnnlab" for m in sys.modules)}))
"""


@pytest.mark.slow
def test_torchscript_loads_in_a_fresh_process_without_cnnlab(run: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    res = CliRunner().invoke(app, ["export", str(run), "--format", "torchscript", "--dynamic-batch",
                                   "--out", str(path)])
    assert res.exit_code == 0, res.output
    said = res.stderr.strip()
    assert said.startswith(f"wrote {path} (torchscript, batch any)") and "torch.jit.load" in said
    assert "(batches of 7, 1): max |logit difference|" in said and "top-1 agreement 100.0%" in said
    images, expected = _val(run)
    save_file({"images": images.contiguous(), "expected": expected.contiguous()}, str(tmp_path / "x.st"))
    out = subprocess.run([sys.executable, "-c", FRESH, str(path), str(tmp_path / "x.st")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["cnnlab_imported"] is False
    assert found["classes"] == load_run(run).classes
    assert max(found["worst"].values()) <= TOL, found


def test_a_failed_check_writes_nothing_and_keeps_the_old_file(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cnnlab.export as export

    real = export._run_onnx

    def off_by_a_bit(path: Path, batches: list[torch.Tensor]) -> tuple[torch.Tensor, str]:
        got, name = real(path, batches)
        return got + 1e-3, name  # a runtime that disagrees with PyTorch by 1e-3

    monkeypatch.setattr(export, "_run_onnx", off_by_a_bit)
    path = tmp_path / "model.onnx"
    path.write_bytes(b"an older export")
    with pytest.raises(CnnlabError, match=r"not written: .*logits up to 0\.001"):
        export_run(run, fmt="onnx", out=path)
    assert path.read_bytes() == b"an older export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary file, no sidecar
    res = CliRunner().invoke(app, ["export", str(run), "--out", str(tmp_path / "new.onnx")])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and "not written" in res.stderr
    assert not (tmp_path / "new.onnx").exists()


@pytest.mark.slow
def test_export_of_a_transfer_features_run(tmp_path: Path) -> None:
    from cnnlab.models import create_model

    torch.manual_seed(1)
    weights = tmp_path / "start.safetensors"
    save_file(create_model("mnist_cnn").state_dict(), str(weights))
    cfg: dict[str, Any] = {**BASE, "limit": 120, "out": str(tmp_path / "features"), "transfer": "features",
                           "weights": str(weights), "cache_dir": str(tmp_path / "cache")}
    fit(TrainConfig(**cfg))
    result = export_run(tmp_path / "features", fmt="onnx")
    assert result.path == tmp_path / "features" / "model.onnx" and result.path.is_file()
    assert result.check.max_abs_diff <= TOL and result.check.top1_agreement == 1.0
    assert json.loads(result.sidecar.read_text())["model"] == "mnist_cnn"
    folder = tmp_path / "exports"
    folder.mkdir()
    scripted = export_run(tmp_path / "features", fmt="torchscript", out=folder)  # a folder: its default name
    assert scripted.path == folder / "model.torchscript.pt" and scripted.check.max_abs_diff <= TOL
