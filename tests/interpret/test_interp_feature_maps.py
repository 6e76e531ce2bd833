"""Feature maps, one channel across images, dead-filter flags."""

from __future__ import annotations

import pytest
import torch
from _interp_models import TinyGapNet, all_hook_dicts_empty

from cnnlab.errors import CnnlabError
from cnnlab.interpret.feature_maps import channel_across_images, dead_filters, feature_maps, layer_activations


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
