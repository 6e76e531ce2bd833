"""Score-CAM with one forward pass per distinct mask: the same maps as pytorch-grad-cam's ScoreCAM
(independent reference), fewer forward passes, and a model left exactly as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _interp_models import TinyGapNet, all_hook_dicts_empty, param_grads_none, seeded
from pytorch_grad_cam import ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from cnnlab._layout import channels_last
from cnnlab.images import decode_image, pil_to_tensor
from cnnlab.interpret import explain
from cnnlab.interpret._scorecam import distinct_masks
from cnnlab.interpret.cam import ScoreCAM as ScoreCAMImpl
from cnnlab.models import create_model, model_info


def _reference(model: nn.Module, layer: nn.Module, x: torch.Tensor, targets: list[int]) -> np.ndarray:
    with ScoreCAM(model=model, target_layers=[layer]) as ref:
        ref.batch_size = 64
        out = ref(x, targets=[ClassifierOutputTarget(t) for t in targets])
    model.zero_grad(set_to_none=True)
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _redundant_net() -> TinyGapNet:
    """TinyGapNet whose CAM layer has a channel that is twice another one and two dead channels."""
    model = seeded(TinyGapNet(num_classes=5))
    conv = model.features[2]
    with torch.no_grad():
        conv.weight[1] = 2 * conv.weight[0]  # ReLU(2z) = 2 ReLU(z): the same normalised map, exactly
        conv.bias[1] = 2 * conv.bias[0]
        conv.bias[2:4] = -1e3  # never positive: all zero after the ReLU
    return model


def test_distinct_masks_merges_equal_shapes_and_drops_constants() -> None:
    a = torch.zeros(2, 5, 3, 3)
    a[0, 1, 0, 0] = 3.0  # one active position ...
    a[0, 2, 0, 0] = 5.0  # ... the same normalised map as channel 1
    a[0, 3] = torch.arange(9.0).view(3, 3)
    a[0, 4] = 7.0  # constant, not zero
    a[1, 0] = torch.arange(9.0).view(3, 3)
    a[1, 1] = 2 * a[1, 0]
    pairs, slot = distinct_masks(a)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (0, 3), (1, 0)]
    assert slot[0, 1] == slot[0, 2] and slot[1, 0] == slot[1, 1]
    assert slot[0, 0] == slot[0, 4] == slot[1, 2] == -1  # constants: the zero mask
    for (i, k), s in zip(pairs.tolist(), range(len(pairs)), strict=True):
        assert slot[i, k] == s


def test_same_maps_as_pytorch_grad_cam_with_fewer_forward_images() -> None:
    model = _redundant_net()
    x = torch.randn(3, 3, 16, 16)
    targets = [0, 3, 4]
    seen: list[int] = []
    handle = model.register_forward_pre_hook(lambda m, args: seen.append(len(args[0])))
    try:
        res = explain(model, x, target=targets, method="scorecam")
    finally:
        handle.remove()
    ref = _reference(model, model.features[3], x, targets)
    np.testing.assert_allclose(res.maps.numpy(), ref, atol=1e-5)
    dead = (res.activations.flatten(2).amax(2) == 0).sum(1)
    assert bool((dead >= 2).all())
    # One forward of the batch, one of the zero image, then one image per distinct live mask.
    expected = 3 + 1 + int((16 - dead - 1).sum())
    assert sum(seen) == expected < 3 + 3 * 16
    assert all_hook_dicts_empty(model) and param_grads_none(model)


def test_batching_does_not_change_the_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _redundant_net()
    x = torch.randn(4, 3, 16, 16)
    monkeypatch.setattr(ScoreCAMImpl, "batch_size", 1)
    one = explain(model, x, method="scorecam")
    monkeypatch.setattr(ScoreCAMImpl, "batch_size", 64)
    many = explain(model, x, method="scorecam")
    torch.testing.assert_close(one.weights, many.weights, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(one.maps, many.maps, rtol=1e-5, atol=1e-6)
    alone = explain(model, x[2:3], method="scorecam").maps  # the other images do not change it
    torch.testing.assert_close(alone, many.maps[2:3], atol=1e-6, rtol=0)


def test_channels_last_gives_the_model_back_unchanged() -> None:
    model = seeded(TinyGapNet())
    before = {n: (p, p.data, p.stride()) for n, p in model.named_parameters()}
    with pytest.raises(RuntimeError, match="inside"), channels_last(model):
        w = model.features[0].weight
        assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
        raise RuntimeError("inside")
    for n, p in model.named_parameters():
        obj, data, stride = before[n]
        assert p is obj and p.data.data_ptr() == data.data_ptr() and p.stride() == stride
    assert all_hook_dicts_empty(model)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_real_models_match_pytorch_grad_cam_on_photos(name: str, data_dir: Path) -> None:
    """resnet18 is randomly initialised (no offline weights): the comparison checks the computation."""
    torch.manual_seed(0)
    model = create_model(name, pretrained=bool(model_info(name)["pretrained_offline"])).eval()
    cfg = model.pretrained_cfg
    mean, std = (cfg.mean, cfg.std) if cfg is not None else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    val = data_dir / "cats-vs-dogs" / "val"
    paths = sorted((val / "dog").glob("*.jpg"))[:1]  # one photo: the reference costs ~1 min per image
    raw = torch.stack([pil_to_tensor(decode_image(p, size=(96, 96))) for p in paths]).float() / 255
    x = (raw - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    ours = explain(model, x, method="scorecam")
    ref = _reference(model, model.get_submodule(model.default_cam_layer), x, ours.targets.tolist())
    r = [_pearson(ours.maps[i].numpy(), ref[i]) for i in range(len(x))]
    print(f"{name}: min Pearson r {min(r):.8f}, max |diff| {np.abs(ours.maps.numpy() - ref).max():.2e}")
    assert min(r) >= 0.999
    np.testing.assert_allclose(ours.maps.numpy(), ref, atol=1e-3)
    assert all_hook_dicts_empty(model) and param_grads_none(model)
