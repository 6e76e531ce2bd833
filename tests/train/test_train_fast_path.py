"""The CPU fast path of training: channels-last by default, fused optimisers, the allocator tuning.

Speed itself is measured side by side in ``benchmarks/train_throughput.py``; these tests check that
the fast path is actually taken and that it does not change what is learned.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from cnnlab.models import create_model
from cnnlab.train.config import Optimizer, TrainConfig
from cnnlab.train.module import ClassifierModule


def _module(**cfg) -> ClassifierModule:
    torch.manual_seed(0)
    model = create_model("mnist_cnn", num_classes=10, in_chans=1)
    return ClassifierModule(model, num_classes=10, config=TrainConfig(progress=False, **cfg))


@pytest.mark.parametrize("optimizer", list(Optimizer))
def test_optimizers_are_fused_on_the_cpu(optimizer):
    opt = _module(optimizer=optimizer).configure_optimizers()
    assert opt.defaults["fused"] is True


@pytest.mark.parametrize(("setting", "nhwc"), [(None, True), (True, True), (False, False)])
def test_channels_last_is_the_cpu_default_and_can_be_turned_off(setting, nhwc):
    module = _module(channels_last=setting)
    module.setup("fit")
    conv = module.model.features.block2.conv.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) is nhwc
    assert conv.is_contiguous() is not nhwc  # a 32x... weight is one or the other, not both


def test_channels_last_and_fused_adam_learn_what_the_plain_path_learns():
    """Ten Adam steps on the same batches: NHWC + fused vs NCHW + for-loop Adam learn the same function.

    The losses of every step and the final logits agree to rounding. The weights agree too, but for a few:
    where a gradient is ~0, Adam's step m / (sqrt(v) + eps) takes the sign of rounding noise, so a weight
    may move by up to lr the other way (seen: 5 of 93,322 weights, 6e-4 apart, on an AVX2 CPU).
    """
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    steps = 10
    finals, losses, logits = [], [], []
    for fast in (True, False):
        module = _module(channels_last=fast)
        module.setup("fit")
        opt = module.configure_optimizers()
        if not fast:
            # the for-loop Adam
            opt = torch.optim.Adam(module.model.parameters(), lr=module.config.learning_rate)
        run = []
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(module(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.append(float(loss))
        losses.append(torch.tensor(run))
        with torch.no_grad():
            logits.append(module(x).contiguous())
        finals.append({k: v.detach().contiguous() for k, v in module.model.state_dict().items()})
    assert float(losses[0][0] - losses[0][-1]) > 0.01  # it learned something
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits[0], logits[1], rtol=1e-4, atol=1e-4)
    lr = module.config.learning_rate
    off = total = 0
    for key in finals[0]:
        a, b = finals[0][key].float(), finals[1][key].float()
        off += int((~torch.isclose(a, b, rtol=1e-3, atol=1e-4)).sum())
        total += a.numel()
        assert float((a - b).abs().max()) <= 2 * steps * lr, key
    assert off <= total // 1000, f"{off} of {total} weights differ"


_FAULTS = """
import resource, sys, torch
sys.path.insert(0, {src!r})
torch.set_num_threads(1)
from cnnlab._perf import tune_allocator
print("applied", tune_allocator())
from cnnlab.models import create_model
m = create_model("mnist_cnn", num_classes=10, in_chans=1).to(memory_format=torch.channels_last)
opt = torch.optim.Adam(m.parameters(), fused=True)
x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
def step():
    loss = torch.nn.functional.cross_entropy(m(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
for _ in range(3): step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10): step()
print("faults", (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def _faults_per_step(tuning: str) -> tuple[bool, float]:
    import os
    from pathlib import Path

    import cnnlab

    src = str(Path(cnnlab.__file__).parents[1])
    env = {**os.environ, "CNNLAB_MALLOC_TUNING": tuning}
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS.format(src=src)], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[out.index("applied") + 1] == "True", float(out[out.index("faults") + 1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_allocator_tuning_removes_the_page_faults_of_every_step():
    applied, tuned = _faults_per_step("1")
    if not applied:
        pytest.skip("this libc has no mallopt (not glibc)")
    untouched_applied, untouched = _faults_per_step("0")
    assert not untouched_applied
    # glibc unmaps and re-faults the multi-MB activation buffers each step unless told to keep them
    assert untouched > 500, untouched
    assert tuned < untouched / 20, (tuned, untouched)
