"""The CAM family against pytorch-grad-cam (independent reference) and its invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _interp_models import TinyFlattenNet, TinyGapNet, all_hook_dicts_empty, param_grads_none, seeded
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget, ClassifierOutputTarget
from torch import nn

from cnnlab.errors import CnnlabError, ModelError
from cnnlab.interpret import CAM_METHODS, explain, gradcam, register_cam_method, top_channels
from cnnlab.interpret.cam import CamMethod

REFERENCE = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "xgradcam": XGradCAM, "layercam": LayerCAM,
             "scorecam": ScoreCAM}


def _reference(model: nn.Module, layer: nn.Module, x: torch.Tensor, targets: list, method: str) -> np.ndarray:
    with REFERENCE[method](model=model, target_layers=[layer]) as ref:
        ref.batch_size = 64  # ScoreCAM only
        out = ref(x, targets=targets)
    model.zero_grad(set_to_none=True)
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("method", list(REFERENCE))
def test_matches_pytorch_grad_cam_per_image_targets(method: str) -> None:
    model = seeded(TinyGapNet(num_classes=5))
    x = torch.randn(4, 3, 20, 20)
    targets = [0, 3, 1, 4]
    ours = gradcam(model, x, target=targets, method=method).numpy()
    ref = _reference(model, model.features[3], x, [ClassifierOutputTarget(t) for t in targets], method)
    assert ours.shape == ref.shape == (4, 20, 20)
    np.testing.assert_allclose(ours, ref, atol=2e-4)
    assert all_hook_dicts_empty(model)


def test_binary_one_logit_uses_the_sign() -> None:
    model = seeded(TinyGapNet(num_classes=1))
    x = torch.randn(4, 3, 16, 16)
    res = explain(model, x)
    logit = model(x)[:, 0]
    assert res.targets.tolist() == (logit > 0).long().tolist()
    for cls in (0, 1):
        ours = gradcam(model, x, target=cls).numpy()
        ref = _reference(model, model.features[3], x, [BinaryClassifierOutputTarget(cls)] * 4, "gradcam")
        np.testing.assert_allclose(ours, ref, atol=2e-4)
    torch.testing.assert_close(explain(model, x, target=0).scores, -logit.detach())


def test_resnet18_standin_matches_reference_and_leaves_no_trace() -> None:
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    ours = gradcam(model, x, layer="layer4").numpy()
    ref = _reference(model, model.layer4, x, [ClassifierOutputTarget(int(t)) for t in model(x).argmax(1)],
                     "gradcam")
    assert min(_pearson(ours[i], ref[i]) for i in range(2)) >= 0.999
    model.train()
    gradcam(model, x, layer="layer4")
    assert model.training  # mode restored
    assert param_grads_none(model)  # no parameter gradients were ever written
    assert all(p.requires_grad for p in model.parameters())
    assert all_hook_dicts_empty(model)


def test_frozen_model_still_differentiates_the_activation() -> None:
    model = seeded(TinyGapNet())
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.randn(2, 3, 16, 16)
    ours = gradcam(model, x)
    for p in model.parameters():
        p.requires_grad_(True)
    torch.testing.assert_close(ours, gradcam(model, x))
    assert float(ours.amax((1, 2)).min()) > 0.99


def test_cam_equals_gradcam_up_to_positive_scale_on_gap_linear() -> None:
    model = seeded(TinyGapNet(num_classes=6))
    x = torch.randn(5, 3, 24, 24)
    cam = explain(model, x, method="cam")
    grad = explain(model, x, method="gradcam")
    h, w = cam.activations.shape[-2:]
    # d logit_c / d A_kij = W_ck / (h w) for GAP + linear: Grad-CAM weights are the CAM weights / (h w).
    torch.testing.assert_close(grad.weights * (h * w), cam.weights, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad.raw * (h * w), cam.raw, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad.maps, cam.maps, rtol=1e-4, atol=1e-5)
    assert torch.equal(cam.targets, grad.targets)


def test_cam_without_gap_linear_head_suggests_gradcam() -> None:
    model = seeded(TinyFlattenNet())
    with pytest.raises(ModelError, match=r"global-average-pool \+ linear.*use `method` gradcam"):
        gradcam(model, torch.randn(2, 1, 8, 8), method="cam")
    assert gradcam(model, torch.randn(2, 1, 8, 8), method="gradcam").shape == (2, 8, 8)
    assert all_hook_dicts_empty(model)


def test_registry_and_bad_arguments() -> None:
    assert set(CAM_METHODS) >= {"cam", "gradcam", "gradcam++", "xgradcam", "layercam", "scorecam"}

    class Dup(CamMethod):
        name = "gradcam"

    with pytest.raises(ValueError, match="already registered"):
        register_cam_method(Dup)
    model = TinyGapNet(num_classes=3)
    with pytest.raises(CnnlabError, match="unknown CAM method"):
        gradcam(model, torch.randn(1, 3, 8, 8), method="nope")
    with pytest.raises(CnnlabError, match=r"^target \[7\].*0\.\.2"):
        gradcam(model, torch.randn(1, 3, 8, 8), target=7)


def test_batches_agree_with_one_pass_and_maps_are_normalised() -> None:
    model = seeded(TinyGapNet(num_classes=4))
    x = torch.randn(7, 3, 16, 16)
    whole = explain(model, x, target=[0, 1, 2, 3, 0, 1, 2], batch_size=32)
    parts = explain(model, x, target=[0, 1, 2, 3, 0, 1, 2], batch_size=3)
    torch.testing.assert_close(whole.maps, parts.maps)
    assert whole.maps.shape == (7, 16, 16)
    assert float(whole.maps.min()) >= 0 and float(whole.maps.amax((1, 2)).min()) > 0.99


def test_top_channels_are_the_largest_weights() -> None:
    model = seeded(TinyGapNet(num_classes=4))
    res = explain(model, torch.randn(3, 3, 16, 16))
    top = top_channels(res, k=4)
    assert top.indices.shape == (3, 4) and top.activations.shape == (3, 4, 8, 8)
    for i in range(3):
        order = res.weights[i].argsort(descending=True)[:4]
        assert top.indices[i].tolist() == order.tolist()
        torch.testing.assert_close(top.activations[i], res.activations[i, order])


def test_layer_followed_by_inplace_relu_uses_its_own_output() -> None:
    """Conv then ReLU(inplace=True): the map uses the conv's own (pre-ReLU) output; autograd reference."""
    model = seeded(TinyGapNet(num_classes=3))
    x = torch.randn(2, 3, 16, 16)
    res = explain(model, x, layer="features.2", target=[2, 0])
    with torch.no_grad():
        conv = model.features[:3](x)
    leaf = conv.clone().requires_grad_(True)
    logits = model.head(torch.relu(leaf))
    (grad,) = torch.autograd.grad(logits[0, 2] + logits[1, 0], leaf)
    torch.testing.assert_close(res.activations, conv)
    assert (res.activations < 0).any()  # really the pre-ReLU values
    raw = (grad.mean((2, 3))[:, :, None, None] * conv).sum(1)
    torch.testing.assert_close(res.raw, raw, rtol=1e-5, atol=1e-6)
    up = torch.nn.functional.interpolate(raw.clamp(min=0)[:, None], size=(16, 16), mode="bilinear")[:, 0]
    lo = up.flatten(1).min(1).values[:, None, None]
    ref = (up - lo) / ((up - lo).flatten(1).max(1).values[:, None, None] + 1e-7)
    torch.testing.assert_close(res.maps, ref, rtol=1e-5, atol=1e-5)
    assert all_hook_dicts_empty(model) and param_grads_none(model)
