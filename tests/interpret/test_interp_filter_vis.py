"""Filter visualisation raises the filters' mean activation (acceptance 4) — stand-in models.

The acceptance test on the registry's mnist_cnn and efficientnet_lite0 is in test_interp_real_models.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

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


@pytest.mark.parametrize("param", ["fft", "pixel"])
def test_batch_size_does_not_change_the_result(param: str) -> None:
    model = _mnist_like()
    runs = [visualize_filters(model, "Conv2d:-1", filters=[4, 0, 9, 2, 7], image_size=(1, 28, 28), steps=6,
                              lr=0.1, param=param, batch_size=b) for b in (5, 2, 1)]
    for other in runs[1:]:
        torch.testing.assert_close(other.images, runs[0].images, rtol=0, atol=1e-5)
        torch.testing.assert_close(other.start_images, runs[0].start_images, rtol=0, atol=0)
        torch.testing.assert_close(other.history, runs[0].history, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(other.end, runs[0].end, rtol=1e-4, atol=1e-5)
    with pytest.raises(CnnlabError, match="batch_size 0"):
        visualize_filters(model, "Conv2d:-1", image_size=(1, 28, 28), steps=1, batch_size=0)


def test_start_and_end_are_the_activations_of_the_returned_images() -> None:
    model = _mnist_like()
    res = visualize_filters(model, "Conv2d:-1", filters=[3, 1], image_size=(1, 28, 28), steps=4)
    with torch.no_grad():
        act = model[:6]
        start = act(res.start_images)[[0, 1], [3, 1]].flatten(1).mean(1)
        end = act(res.images)[[0, 1], [3, 1]].flatten(1).mean(1)
    torch.testing.assert_close(res.start, start)
    torch.testing.assert_close(res.end, end)
    assert not torch.equal(res.start_images, res.images)


def test_does_not_import_torch_dynamo() -> None:
    """torch.optim.Adam imports torch._dynamo on first use (seconds); the functional adam does not."""
    code = (
        "import sys, torch\n"
        "from torch import nn\n"
        "from cnnlab.interpret.filter_vis import visualize_filters\n"
        "torch.manual_seed(0)\n"  # an unseeded start can sit where 3 steps do not move it
        "m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))\n"
        "r = visualize_filters(m, '2', image_size=(1, 12, 12), steps=3)\n"
        "assert bool((r.end > r.start).any()), (r.start, r.end)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
