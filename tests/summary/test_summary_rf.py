"""Acceptance 3: receptive fields against an exact autograd oracle, never against our own formula.

Oracle (tests/_rf_oracle.py, shared with the 1-D tests): the receptive field of a unit is the support of
the gradient d unit / d input, made exact by positive constant weights, unit-statistics BN, an all-ones
input and max-pools swapped for average pools of the same window (nothing cancels, nothing is routed to
one arg-max); the unit is the centre of the layer's output, on an input large enough that the support
touches no border. The extent (rows, cols) of the non-zero gradient is then the field; ``summarize`` must
give exactly it.
"""

from __future__ import annotations

import pytest
from torch import nn

from _rf_oracle import oracle_fields
from cnnlab.models import create_model
from cnnlab.summary import summarize


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
