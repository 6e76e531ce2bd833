"""Acceptance 3: receptive fields against an exact autograd oracle, never against our own formula.

Oracle: the receptive field of a unit is the set of input pixels its value depends on, i.e. the
support of the gradient d unit / d input. To make that support exact, nothing may cancel or be cut:

* every conv/linear weight is the positive constant 1/fan_in, every bias and BN shift is +0.1, BN uses
  unit statistics, and the input is all ones: every pre-activation is positive, so every ReLU passes
  its gradient and no sum of contributions can cancel;
* max-pooling routes its gradient to a single element of its window (the arg-max), so its gradient
  support is not its field. The oracle swaps each ``MaxPool2d`` for an ``AvgPool2d`` with the same
  kernel/stride/padding: the same window, whose gradient reaches all of it. The real layers'
  geometry is unchanged, so the field is the real one;
* the unit is the centre of the layer's output (summed over channels), and the input is large enough
  that the support touches no border (asserted), so the field is not clipped.

The extent (rows, cols) of the non-zero gradient is then the field; ``summarize`` must give exactly it.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from cnnlab.models import create_model
from cnnlab.summary import summarize


def _oracle_model(model: nn.Module) -> nn.Module:
    m = copy.deepcopy(model).eval()
    for parent in list(m.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d):
                assert child.dilation in (1, (1, 1))
                setattr(
                    parent,
                    name,
                    nn.AvgPool2d(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode),
                )
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                mod.weight.fill_(1.0 / mod.weight[0].numel())
                if mod.bias is not None:
                    mod.bias.fill_(0.1)
            elif isinstance(mod, nn.BatchNorm2d):
                mod.weight.fill_(1.0)
                mod.bias.fill_(0.1)
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
    return m


def oracle_fields(
    model: nn.Module, input_size: tuple[int, int, int], names: list[str]
) -> dict[str, tuple[int, int]]:
    """Gradient-support extent (rows, cols) of the centre unit of each named layer's output."""
    m = _oracle_model(model)
    outs: dict[str, torch.Tensor] = {}
    hooks = [
        m.get_submodule(n).register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, o)) for n in names
    ]
    x = torch.ones(1, *input_size, requires_grad=True)
    try:
        m(x)
    finally:
        for h in hooks:
            h.remove()
    result = {}
    for n in names:
        o = outs[n]
        unit = o[0, :, o.shape[2] // 2, o.shape[3] // 2].sum()
        (g,) = torch.autograd.grad(unit, x, retain_graph=True)
        support = g[0].abs().sum(0) > 0
        rows = support.any(1).nonzero().flatten()
        cols = support.any(0).nonzero().flatten()
        assert rows.min() > 0 and cols.min() > 0, f"{n}: field clipped by the border; use a larger input"
        assert rows.max() < input_size[1] - 1 and cols.max() < input_size[2] - 1, f"{n}: field clipped"
        result[n] = (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
    return result


def _check(model: nn.Module, size: tuple[int, int, int], names: list[str] | None = None) -> dict[str, tuple]:
    s = summarize(model, size)
    spatial = [r for r in s.layers if r.depth > 0 and r.field is not None and not r.field.is_global]
    if names is not None:
        spatial = [r for r in spatial if r.name in names]
        assert {r.name for r in spatial} == set(names)
    assert spatial
    oracle = oracle_fields(model, size, sorted({r.name for r in spatial}))
    got = {r.name: r.field.rf for r in spatial}
    assert got == oracle
    return got


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("mnist_cnn", (1, 28, 28)),
        ("mnist_cnn_gap", (1, 28, 28)),
        ("mnist_cnn_base", (1, 28, 28)),
        ("cats_cnn", (3, 150, 150)),
        ("cats_cnn_dropout", (3, 150, 150)),
    ],
)
def test_every_layer_of_the_course_nets(name: str, size: tuple[int, int, int]) -> None:
    got = _check(create_model(name), size)
    assert len(got) >= 10  # blocks, convs, relus, pools: every spatial layer was compared


def test_spec_blocks_residual_inception_factorised_dilated() -> None:
    from cnnlab.models.spec import build_from_spec

    spec = (
        "conv:8:3:stride=2 relu res:8 res:16:stride=2 "
        "inception(conv:4:1 | conv:4:5:padding=2 | maxpool:3:stride=1:padding=1,conv:4:1) "
        "fact:8:7 conv:8:3:dilation=3:padding=3 avgpool:3:stride=2"
    )
    net = build_from_spec(spec, head="gap", input_size=(1, 128, 128), num_classes=2)
    _check(net, (1, 128, 128))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "size", "stage", "expected"),
    [
        ("resnet18", 512, "features.layer4", 435),
        ("resnet50", 512, "features.layer4", 427),
        ("vgg16", 288, "features.block5", 212),
    ],
)
def test_last_stage_of_the_zoo(name: str, size: int, stage: str, expected: int) -> None:
    model = create_model(name)
    model.get_submodule(stage)
    # the stage, its last block and that block's last conv
    last_block = [n for n, _ in model.get_submodule(stage).named_children()][-1]
    names = [stage, f"{stage}.{last_block}"]
    got = _check(model, (3, size, size), names)
    assert got[stage] == (expected, expected)  # the published values agree with the oracle too
