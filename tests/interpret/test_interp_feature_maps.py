"""Feature maps, one channel across images, dead-filter flags."""

from __future__ import annotations

import pytest
import torch
from _interp_models import TinyGapNet, all_hook_dicts_empty

from cnnlab.errors import CnnlabError
from cnnlab.interpret.feature_maps import (
    FeatureMaps,
    channel_across_images,
    dead_filters,
    feature_maps,
    layer_activations,
    normalise_maps,
    resolve_feature_layer,
)


def _model_with_dead_channels() -> TinyGapNet:
    model = TinyGapNet(in_chans=1, width=4).eval()
    with torch.no_grad():
        conv = model.features[0]
        conv.weight[1].zero_()
        conv.bias[1] = -1.0  # channel 1: always -1 before ReLU, 0 after -> dead, not zero (pre-ReLU)
        conv.weight[2].zero_()
        conv.bias[2] = 0.0  # channel 2: exactly zero everywhere
    return model


def test_feature_maps_all_channels_of_one_image() -> None:
    model = _model_with_dead_channels()
    x = torch.rand(1, 12, 12)
    fm = feature_maps(model, x, "features.0")
    torch.testing.assert_close(fm.maps, model.features[0](x[None])[0])
    assert fm.maps.shape == (4, 12, 12)
    assert fm.dead.tolist()[1:3] == [True, True]
    assert fm.zero.tolist()[1:3] == [False, True]
    assert all_hook_dicts_empty(model)


def test_dead_filters_over_inputs_after_relu() -> None:
    model = _model_with_dead_channels()
    images = torch.rand(6, 1, 12, 12)
    flags = dead_filters(model, images, "features.1")  # after the ReLU both are exactly zero
    assert flags.dead[1] and flags.dead[2] and flags.zero[1] and flags.zero[2]
    ref = model.features[:2](images)
    expected_dead = (ref.amax((0, 2, 3)) <= 0).tolist()
    assert flags.dead.tolist() == expected_dead
    torch.testing.assert_close(flags.active_fraction, (ref > 0).float().mean((0, 2, 3)))


def test_channel_across_images_and_truncation() -> None:
    model = TinyGapNet().eval()
    images = torch.randn(3, 3, 10, 10)
    ch = channel_across_images(model, images, "Conv2d:-1", 5)
    ref = model.features[2](torch.relu(model.features[0](images)))[:, 5]
    torch.testing.assert_close(ch, ref)
    # Only the layers up to the requested one run: a broken head must not matter.
    model.head = torch.nn.Sequential(torch.nn.Linear(1, 1))
    assert layer_activations(model, images, "features.2").shape == (3, 16, 5, 5)
    with pytest.raises(CnnlabError, match="--channel 99"):
        channel_across_images(model, images, "features.2", 99)


# ---- the default layer: the first post-activation map ------------------------------------------------


class _LateReluFirst(torch.nn.Module):
    """Defines a ReLU first but runs it last, on a vector; the first spatial activation is ``act`` (SiLU)."""

    def __init__(self) -> None:
        super().__init__()
        self.late = torch.nn.ReLU()
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)
        self.act = torch.nn.SiLU()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.late(self.fc(self.act(self.conv(x)).mean((2, 3))))


class _FunctionalRelu(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu(self.stem(x))


def test_auto_layer_is_the_first_post_activation_map() -> None:
    model = _model_with_dead_channels()
    x = torch.rand(1, 12, 12)
    assert resolve_feature_layer(model, x) == "features.1"  # the ReLU after the first conv
    fm = feature_maps(model, x)  # default layer "auto"
    assert fm.layer == "features.1"
    torch.testing.assert_close(fm.maps, torch.relu(model.features[0](x[None]))[0])
    assert (fm.maps >= 0).all() and fm.dead.tolist()[1:3] == [True, True]
    assert all_hook_dicts_empty(model)
    # execution order, spatial outputs only: the ReLU defined first runs last, on a vector
    assert resolve_feature_layer(_LateReluFirst(), torch.rand(2, 1, 8, 8)) == "act"
    # no activation module (F.relu in forward): the first convolution
    assert resolve_feature_layer(_FunctionalRelu(), torch.rand(1, 1, 8, 8)) == "stem.0"
    # explicit specs resolve as in hooks
    assert resolve_feature_layer(model, x, "Conv2d:-1") == "features.2"


def test_auto_layer_on_registry_and_torchvision_models() -> None:
    import torchvision

    from cnnlab.models import create_model

    mnist = create_model("mnist_cnn", num_classes=10)
    assert resolve_feature_layer(mnist, torch.rand(1, 1, 28, 28)) == "features.block1.relu"
    resnet = torchvision.models.resnet18(weights=None).eval()
    assert resolve_feature_layer(resnet, torch.rand(1, 3, 64, 64)) == "relu"  # conv1 -> bn1 -> relu
    x = torch.rand(3, 3, 64, 64)
    ref = resnet.relu(resnet.bn1(resnet.conv1(x)))
    torch.testing.assert_close(dead_filters(resnet, x).active_fraction, (ref > 0).float().mean((0, 2, 3)))


# ---- normalisation for drawing ----------------------------------------------------------------------


def _known_maps() -> FeatureMaps:
    ramp = torch.linspace(0, 1, 16).reshape(4, 4)
    maps = torch.stack([ramp, 0.1 * ramp, -ramp - 0.5])  # strong, weak, dead (<= 0 everywhere, varying)
    flat = maps.flatten(1)
    return FeatureMaps("x", maps, flat.amax(1) <= 0, flat.abs().amax(1) == 0)


def test_normalise_maps_per_channel_and_across_the_layer() -> None:
    fm = _known_maps()
    ramp = fm.maps[0]
    per_channel = normalise_maps(fm, "channel")
    torch.testing.assert_close(per_channel[0], ramp)
    torch.testing.assert_close(per_channel[1], ramp)  # the weak channel stretched to full contrast
    assert (per_channel[2] == 0).all()  # dead: flat, not stretched
    layer = normalise_maps(fm, "layer")  # one scale: layer min -1.5 -> 0, max 1 -> 1
    torch.testing.assert_close(layer[0], (ramp + 1.5) / 2.5)
    torch.testing.assert_close(layer[1], (0.1 * ramp + 1.5) / 2.5)  # the weak channel stays weak
    torch.testing.assert_close(layer[2], torch.full((4, 4), 1.5 / 2.5))  # dead: flat at the level of 0
    with pytest.raises(CnnlabError, match="scale='global'"):
        normalise_maps(fm, "global")  # type: ignore[arg-type]
