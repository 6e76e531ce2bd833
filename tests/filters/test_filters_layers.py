"""FixedFilterConv2d: the bank's kernels in a conv layer, frozen or trainable."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.filters import FixedFilterConv2d, apply_bank, make_bank


def test_filters_layer_output_equals_apply_bank():
    x = torch.rand(3, 1, 20, 22)
    bank = make_bank("gabor", frequencies=(0.2, 0.35), thetas=4)
    layer = FixedFilterConv2d(bank, in_channels=1)
    assert isinstance(layer, nn.Conv2d) and layer.out_channels == 8
    torch.testing.assert_close(layer(x), apply_bank(x, bank), rtol=1e-5, atol=1e-6)
    wave = FixedFilterConv2d.from_bank("haar_wavelet")
    assert wave.stride == (2, 2) and wave(x).shape == (3, 4, 10, 11)


def test_filters_layer_frozen_has_no_grad_trainable_has_grad():
    x = torch.rand(2, 1, 16, 16)
    frozen = FixedFilterConv2d.from_bank("sobel", in_channels=1, trainable=False, bias=True)
    assert not frozen.trainable and not any(p.requires_grad for p in frozen.parameters())
    head = nn.Linear(2 * 16 * 16, 1)
    (head(frozen(x).flatten(1)).sum()).backward()
    assert frozen.weight.grad is None and frozen.bias.grad is None
    assert head.weight.grad is not None  # the rest of the net still learns

    trainable = FixedFilterConv2d.from_bank("sobel", in_channels=1, trainable=True)
    before = trainable.weight.detach().clone()
    opt = torch.optim.SGD(trainable.parameters(), lr=0.1)
    trainable(x).pow(2).mean().backward()
    assert trainable.weight.grad is not None and trainable.weight.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(trainable.weight.detach(), before)
    trainable.trainable = False
    assert not trainable.weight.requires_grad


def test_filters_layer_in_channels_average_and_replicate():
    x = torch.rand(2, 3, 12, 12)
    bank = make_bank("laplacian")
    avg = FixedFilterConv2d(bank, in_channels=3, channel_mode="average")
    rep = FixedFilterConv2d(bank, in_channels=3, channel_mode="replicate")
    grey = x.mean(dim=1, keepdim=True)
    torch.testing.assert_close(avg(x), apply_bank(grey, bank), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rep(x), 3 * avg(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(CnnlabError, match="channel_mode"):
        FixedFilterConv2d(bank, in_channels=3, channel_mode="sum")  # type: ignore[arg-type]


def test_filters_layer_state_dict_loads_into_plain_conv():
    layer = FixedFilterConv2d.from_bank("gabor", thetas=2, frequencies=(0.25,))
    plain = nn.Conv2d(1, 2, layer.kernel_size, padding="same", bias=False)
    plain.load_state_dict(layer.state_dict())
    x = torch.rand(1, 1, 15, 15)
    torch.testing.assert_close(plain(x), layer(x))


def test_filters_frozen_layer_stays_frozen_when_the_model_is_unfrozen():
    """Transfer "scratch"/"full" call model.requires_grad_(True); a frozen bank must still not move."""
    layer = FixedFilterConv2d.from_bank("gabor", thetas=2, frequencies=(0.25,), bias=True)
    model = nn.Sequential(layer, nn.Flatten(), nn.Linear(2 * 10 * 10, 1))
    model.requires_grad_(True)
    before = layer.weight.detach().clone()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    model(torch.rand(4, 1, 10, 10)).sum().backward()
    opt.step()
    assert layer.weight.grad is None and layer.bias.grad is None
    assert torch.equal(layer.weight.detach(), before)
    assert not layer.trainable
