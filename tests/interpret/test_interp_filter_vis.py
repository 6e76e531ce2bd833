"""Filter visualisation raises the filters' mean activation (acceptance 4) — stand-in models.

The acceptance test on the registry's mnist_cnn and efficientnet_lite0 is in test_interp_real_models.py.
"""

from __future__ import annotations

import pytest
import torch
from _interp_models import TinyGapNet, all_hook_dicts_empty, param_grads_none
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.interpret.filter_vis import visualize_filters


def _mnist_like() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 10 * 10, 10))


@pytest.mark.parametrize("param", ["fft", "pixel"])
def test_gradient_ascent_raises_the_objective_grayscale_28(param: str) -> None:
    model = _mnist_like()
    res = visualize_filters(model, "Conv2d:-1", filters=range(6), image_size=(1, 28, 28), steps=30,
                            lr=0.2, param=param)
    assert res.images.shape == (6, 1, 28, 28)
    assert float(res.images.min()) >= 0 and float(res.images.max()) <= 1
    # Well above the random start, and above the best of 64 uniform-noise images for every filter.
    with torch.no_grad():
        noise_act = model[:6](torch.rand(64, 1, 28, 28))[:, :6].mean((2, 3))
    assert bool((res.end > res.start + 0.015).all()), (res.start, res.end)
    assert bool((res.end > noise_act.amax(0)).all()), (noise_act.amax(0), res.end)
    assert res.history.shape == (30, 6)
    assert param_grads_none(model) and all_hook_dicts_empty(model)


def test_rgb_decorrelated_and_deterministic() -> None:
    model = TinyGapNet()
    a = visualize_filters(model, "features.2", filters=[0, 3], image_size=(3, 32, 32), steps=5)
    b = visualize_filters(model, "features.2", filters=[0, 3], image_size=(3, 32, 32), steps=5)
    torch.testing.assert_close(a.images, b.images)
    assert a.images.shape == (2, 3, 32, 32) and a.filters == [0, 3]
    with pytest.raises(CnnlabError, match=r"--filters \[99\].*16 filters"):
        visualize_filters(model, "features.2", filters=[99], image_size=(3, 16, 16), steps=1)
