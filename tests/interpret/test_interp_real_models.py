"""Acceptance 1 and 4 on the registry's real models and real photos.

1. Grad-CAM agrees with pytorch-grad-cam's ``GradCAM`` (Pearson r >= 0.99 per image, same layer, same
   targets, both at input resolution) on resnet18, efficientnet_lite0 (pretrained, offline package) and
   cats_cnn, on photos from ``$CNNLAB_DATA_DIR/cats-vs-dogs/val``. resnet18's and cats_cnn's weights are
   not available offline, so they are randomly initialised (seeded); the comparison checks the
   computation, which does not depend on the weights.
4. Filter visualisation raises the mean activation of every filter far above its value on the random
   start, and above the best real image, for mnist_cnn (1x28x28) and efficientnet_lite0.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from _interp_models import all_hook_dicts_empty, param_grads_none
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget, ClassifierOutputTarget

from cnnlab.images import decode_image, pil_to_tensor
from cnnlab.interpret import explain
from cnnlab.interpret.feature_maps import layer_activations
from cnnlab.interpret.filter_vis import visualize_filters
from cnnlab.models import create_model, model_info

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _photos(data_dir: Path, size: int, mean, std) -> torch.Tensor:
    val = data_dir / "cats-vs-dogs" / "val"
    paths = sorted((val / "cat").glob("*.jpg"))[:2] + sorted((val / "dog").glob("*.jpg"))[:2]
    x = torch.stack([pil_to_tensor(decode_image(p, size=(size, size))) for p in paths]).float() / 255
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, pretrained=bool(model_info(name)["pretrained_offline"])).eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0", "cats_cnn"])
def test_gradcam_matches_pytorch_grad_cam_on_photos(name: str, data_dir: Path) -> None:
    model = _model(name)
    cfg = model.pretrained_cfg
    size = 150 if name == "cats_cnn" else 224
    mean, std = (cfg.mean, cfg.std) if cfg is not None else ((0.0,) * 3, (1.0,) * 3) if name == "cats_cnn" \
        else IMAGENET
    x = _photos(data_dir, size, mean, std)
    ours = explain(model, x)  # layer "auto" = model.default_cam_layer, target = predicted class
    binary = ours.logits.shape[1] == 1
    target_cls = BinaryClassifierOutputTarget if binary else ClassifierOutputTarget
    layer = model.get_submodule(model.default_cam_layer)
    with GradCAM(model=model, target_layers=[layer]) as ref_cam:
        ref = ref_cam(x, targets=[target_cls(int(t)) for t in ours.targets])
    model.zero_grad(set_to_none=True)
    assert ours.maps.shape == ref.shape == (4, size, size)
    r = [float(np.corrcoef(ours.maps[i].numpy().ravel(), ref[i].ravel())[0, 1]) for i in range(4)]
    print(f"{name}: layer {ours.layer}, targets {ours.targets.tolist()}, min Pearson r {min(r):.8f}")
    assert min(r) >= 0.99
    # Our run leaves no trace: no hooks, no parameter gradients.
    explain(model, x)
    assert all_hook_dicts_empty(model) and param_grads_none(model)


def test_filter_vis_mnist_cnn_beats_real_digits(data_dir: Path) -> None:
    model = _model("mnist_cnn")
    layer = "Conv2d:-1"
    res = visualize_filters(model, layer, filters=range(16), steps=40, lr=0.2)
    with gzip.open(data_dir / "mnist-10k" / "images-idx3-ubyte.gz") as fh:
        digits = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:256]
    real = torch.cat([torch.from_numpy(digits.copy()).float() / 255, torch.rand(256, 1, 28, 28)])
    best_real = layer_activations(model, real, layer)[:, :16].mean((2, 3)).amax(0)
    print(f"mnist_cnn {res.layer}: start {res.start.mean():.4f}, end {res.end.mean():.4f}, "
          f"best of 512 digits/noise {best_real.mean():.4f}")
    assert res.images.shape == (16, 1, 28, 28)
    assert bool((res.end > res.start).all())
    assert bool((res.end > best_real).all())  # each filter: above the best of 256 digits and 256 noise images
    assert float((res.end - res.start).mean()) > 2 * float(res.start.abs().mean())


@pytest.mark.slow
def test_filter_vis_efficientnet_lite0_far_above_photos(data_dir: Path) -> None:
    model = _model("efficientnet_lite0")
    cfg = model.pretrained_cfg
    layer = "features.blocks.2"
    res = visualize_filters(model, layer, filters=range(8), image_size=(3, 96, 96), steps=20)
    photo = layer_activations(model, _photos(data_dir, 96, cfg.mean, cfg.std), layer)[:, :8].mean((2, 3))
    print(f"efficientnet_lite0 {layer}: start {res.start.tolist()}\n end {res.end.tolist()}\n"
          f" best photo {photo.amax(0).tolist()}")
    assert bool((res.end > res.start + 10).all())
    assert bool((res.end > 2 * photo.amax(0).clamp(min=1.0)).all())
    assert res.history[-1].mean() > res.history[0].mean()
    assert param_grads_none(model) and all_hook_dicts_empty(model)
