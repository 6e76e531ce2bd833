"""CAM and Grad-CAM along time on a trained 1-D convnet: equal to a direct autograd computation (and to
pytorch-grad-cam), and ``cnnlab explain RUN SERIES`` with its figure."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.data import load_data
from cnnlab.interpret.cam import explain
from cnnlab.source import resolve_model
from cnnlab.train import TrainConfig, fit

SPEC = "conv1d:16:8:padding=same bn1d relu conv1d:16:5:padding=same bn1d relu"
# A run is trained for the module (tens of seconds), and the CLI runs in subprocesses.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small 1-D convnet trained on ItalyPowerDemand (24 samples a series) for a few epochs, once."""
    out = tmp_path_factory.mktemp("series") / "run"
    fit(TrainConfig(data="ucr:ItalyPowerDemand", model=SPEC, epochs=10, batch_size=16, seed=0, out=str(out),
                    progress=False))
    return out


def _direct_gradcam(model: torch.nn.Module, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM by hand: mean gradient over time as channel weights, ReLU, linear upsampling, min-max."""
    acts: list[torch.Tensor] = []
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, o: acts.append(o))
    try:
        logits = model(x)
    finally:
        handle.remove()
    target = logits.argmax(1)
    a = acts[0]
    (g,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), a)
    cam = (g.mean(2, keepdim=True) * a).sum(1).clamp(min=0)
    up = F.interpolate(cam[:, None], size=x.shape[-1], mode="linear", align_corners=False)[:, 0]
    lo = up.min(1, keepdim=True).values
    up = up - lo
    return (up / (up.max(1, keepdim=True).values + 1e-7)).detach(), target


def test_gradcam_along_time_equals_autograd_and_pytorch_grad_cam(run: Path) -> None:
    src = resolve_model(run)
    model = src.model.eval()
    x = src.preprocess.normalize(load_data("ucr:ItalyPowerDemand").val.images[:12])
    layer = model.default_cam_layer
    res = explain(model, x, layer=layer, method="gradcam")
    want, target = _direct_gradcam(model, x, layer)
    assert res.maps.shape == (12, 24)
    assert torch.equal(res.targets, target)
    assert (res.maps - want).abs().max() <= 1e-5
    assert float(res.maps.max()) > 0.99  # a real map, not all zeros

    # pytorch-grad-cam takes 4-D activations only: give it the same network seen as height-1 images (input
    # [N, C, 1, L], the layer's output unsqueezed to [N, K, 1, l]); its map is then Grad-CAM along time.
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    # Ours in float64; pytorch-grad-cam hands back float32 maps (np.float32 and OpenCV inside), which differ
    # from ours by 1.2e-5 at most here: the reference check is to 5e-5, the autograd one above to 1e-5.
    as_2d, tap = _height_one_view(model.double(), layer)
    x64 = x.double()
    ours = explain(model, x64, layer=layer, method="gradcam").maps
    with GradCAM(model=as_2d, target_layers=[tap]) as theirs:
        targets = [ClassifierOutputTarget(int(t)) for t in target]
        ref = theirs(input_tensor=x64[:, :, None, :], targets=targets)
    assert ref.shape == (12, 1, 24)
    assert (ours - torch.as_tensor(ref[:, 0])).abs().max() <= 5e-5
    assert (ours.float() - res.maps).abs().max() <= 1e-4  # float32 and float64 maps agree too


class _Unsqueeze(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, None, :]


class _Squeeze(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, 0, :]


def _height_one_view(model: torch.nn.Module, layer: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(model taking [N, C, 1, L], the module whose output is the layer's map as [N, K, 1, l])."""
    m = copy.deepcopy(model)
    parent_name, _, child = layer.rpartition(".")
    parent = m.get_submodule(parent_name)
    tap = _Unsqueeze()
    setattr(parent, child, torch.nn.Sequential(getattr(parent, child), tap, _Squeeze()))

    class View(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x[:, :, 0, :])

    return View().eval(), tap


def test_cam_of_wang_et_al_equals_gradcam_times_length_for_a_gap_head(run: Path) -> None:
    # With GAP + linear, Grad-CAM's weights are the classifier's weights / l: the same normalised map.
    src = resolve_model(run)
    x = src.preprocess.normalize(load_data("ucr:ItalyPowerDemand").val.images[:6])
    cam = explain(src.model, x, method="cam")
    grad = explain(src.model, x, method="gradcam")
    assert (cam.maps - grad.maps).abs().max() <= 1e-5


def test_cli_explain_series_figure_and_json(run: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.npy"
    np.save(one, load_data("ucr:ItalyPowerDemand").val.images[5, 0].numpy())
    out = tmp_path / "cam.png"
    cmd = [sys.executable, "-m", "cnnlab", "explain", str(run), "ucr:ItalyPowerDemand",
           "ucr:ItalyPowerDemand:5", str(one), "--out", str(out), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert out.is_file() and doc["weights"] == "trained" and doc["method"] == "gradcam"
    val = load_data("ucr:ItalyPowerDemand").val
    per_class = [i for c in range(2) for i in (val.labels == c).nonzero().flatten()[:3].tolist()]
    names = [s["series"] for s in doc["series"]]
    assert names == [*(f"ucr:ItalyPowerDemand:{i}" for i in per_class), "ucr:ItalyPowerDemand:5", str(one)]
    # the same series given by index and as a file: the same map
    assert doc["series"][-1]["peak_sample"] == doc["series"][-2]["peak_sample"]
    assert doc["series"][-2]["label"] is not None and doc["series"][-1]["label"] is None
    bad = subprocess.run([sys.executable, "-m", "cnnlab", "explain", str(run), "ucr:ItalyPowerDemand:5000",
                          "--out", str(tmp_path / "bad.png")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "0..1028" in bad.stderr


def test_cli_evaluate_and_predict_on_series(run: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.npy"
    np.save(one, load_data("ucr:ItalyPowerDemand").val.images[7].numpy())  # [C, L]
    cmd = [sys.executable, "-m", "cnnlab", "predict", str(run), "ucr:ItalyPowerDemand:7", str(one), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    preds = json.loads(r.stdout)
    assert [p["path"] for p in preds] == ["ucr:ItalyPowerDemand:7", str(one)]
    assert preds[0]["predictions"] == preds[1]["predictions"]  # the same series, by index and from a file
    r = subprocess.run([sys.executable, "-m", "cnnlab", "evaluate", str(run), "--json"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert sum(sum(row) for row in doc["confusion"]) == 1029  # the archive's whole TEST split
    assert (run / "confusion.png").is_file() and not (run / "top_losses.png").exists()


@pytest.mark.parametrize("command", ["dream", "features", "probe", "invariance", "rf", "arithmetic"])
def test_image_only_commands_refuse_a_series_run_in_one_line(command: str, run: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cnnlab.cli import app

    one = tmp_path / "one.npy"
    np.save(one, load_data("ucr:ItalyPowerDemand").val.images[7].numpy())
    args = {"features": [str(one)], "probe": ["--no-tsne"]}.get(command, [])
    out = [] if command == "probe" else ["--out", str(tmp_path / "x.png")]
    result = CliRunner().invoke(app, [command, str(run), *args, *out])
    assert result.exit_code == 2, (result.output, repr(result.exception))
    assert f"is a 1-D convnet for series; cnnlab {command} works on image models" in result.output
    assert "Traceback" not in result.output and not list(tmp_path.glob("x*"))
