"""The explorer's stages and unit boxes, against autograd: the box of a unit is exactly the set of input
pixels its value depends on.

Reference: the network with every weight positive (each conv an average of its window, batch norm the
identity, max pools replaced by average pools of the same window) in float64 on a small positive input,
where no activation clips; then d unit / d pixel > 0 exactly on the unit's receptive field, clipped at
the border. The boxes come from the serve package's offsets and the summary's field sizes and jumps.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from cnnlab.receptive.units import Stage, conv_stages


def _positive(model: nn.Module) -> nn.Module:
    m = copy.deepcopy(model).double().eval()
    for mod in list(m.modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, nn.MaxPool2d):  # a max pool's gradient reaches one pixel of its window
                setattr(mod, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                      ceil_mode=child.ceil_mode))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d | nn.Linear):
                mod.weight.fill_(1.0 / mod.weight[0].numel())
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
                mod.weight.fill_(1.0)
                mod.bias.zero_()
    return m


def _supports(model: nn.Module, stage: Stage, units: list[tuple[int, int]],
              size: tuple[int, int, int]) -> list[tuple[Any, ...]]:
    """Per unit: (top, left, bottom, right) of the pixels with d unit / d pixel > 0, and whether they fill it.

    The unit is the layer's value at (row, col) summed over its channels (a layer's field is the widest
    of its channels', e.g. over the branches of an inception block).
    """
    from cnnlab.interpret.hooks import run_until, truncated_capture

    x = torch.full((1, *size), 1e-3, dtype=torch.float64, requires_grad=True)
    with truncated_capture(model, stage.name) as cap:
        run_until(model, x)
    y = cap.activations[stage.name]
    out = []
    for row, col in units:
        (g,) = torch.autograd.grad(y[0, :, row, col].sum(), x, retain_graph=True)
        seen = g[0].sum(0) > 0
        rows, cols = seen.any(1).nonzero()[:, 0], seen.any(0).nonzero()[:, 0]
        top, bottom, left, right = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
        out.append((top, left, bottom, right, bool(seen[top : bottom + 1, left : right + 1].all())))
    return out


def _model(name: str) -> tuple[nn.Module, tuple[int, int, int]]:
    from cnnlab.models import create_model
    from cnnlab.models.spec import build_from_spec

    if name.startswith("spec:"):
        size = (3, 37, 41)
        return build_from_spec(name[5:], head="gap", input_size=size, num_classes=3).eval(), size
    # Even sizes: timm pads a stride-2 conv of an even map asymmetrically (0 before, 1 after).
    size = {"efficientnet_lite0": (3, 64, 64), "resnet18": (3, 96, 96), "mnist_cnn": (1, 28, 28)}[name]
    return create_model(name, pretrained=False).eval(), size


MODELS = [
    "mnist_cnn",  # valid convolutions and max pools (the course)
    pytest.param("efficientnet_lite0", marks=pytest.mark.slow),  # timm's Conv2dSame: asymmetric F.pad
    "resnet18",  # 7x7/2 stem, padded max pool, residual blocks with strided projections
    # 'same' with an even kernel (PyTorch pads the odd row after), dilation, padded pooling, an inception
    # block (branches of different fields, concatenated) and a strided residual block
    "spec:conv:6:4:padding=same conv:5:3:stride=2:dilation=2 avgpool:3:stride=2:padding=1 "
    "inception(conv:4:1 | conv:4:1,conv:4:5:padding=2 | maxpool:3:stride=1:padding=1,conv:4:1) "
    "res:6:stride=2",
]


@pytest.mark.parametrize("name", MODELS)
def test_every_units_box_is_the_set_of_pixels_it_depends_on(name: str) -> None:
    model, size = _model(name)
    stages = conv_stages(model, size)
    assert stages
    reference = _positive(model)
    for st in stages:
        _, h, w = st.shape
        units = sorted({(0, 0), (h - 1, w - 1), (h // 2, w // 3), (0, w - 1)})
        for (row, col), (*support, filled) in zip(units, _supports(reference, st, units, size), strict=True):
            box = st.box(row, col)
            assert [box.top, box.left, box.bottom, box.right] == support, (st.name, row, col)
            assert filled


@pytest.mark.parametrize("name", ["mnist_cnn", "efficientnet_lite0", "resnet18"])
def test_stage_fields_are_the_summarys(name: str) -> None:
    from cnnlab.summary import summarize

    model, size = _model(name)
    summary = summarize(model, size)
    for st in conv_stages(model, size):
        rec = summary.layer(st.name)
        assert rec.field is not None and st.rf == rec.field.rf and st.jump == rec.field.jump
        assert list(st.shape) == rec.output_shape


def test_the_stages_of_known_models() -> None:
    model, size = _model("efficientnet_lite0")
    names = [s.name for s in conv_stages(model, size)]
    assert names == ["features.bn1", *[f"features.blocks.{i}" for i in range(7)], "features.bn2"]
    model, size = _model("resnet18")
    assert [s.name for s in conv_stages(model, size)] == [
        "features.relu", "features.maxpool", "features.layer1", "features.layer2", "features.layer3",
        "features.layer4"]


def test_a_linear_stages_contributions_add_up_to_the_unit(monkeypatch: Any) -> None:
    from cnnlab.serve.engine import Engine
    from cnnlab.serve.uploads import Photo
    from cnnlab.source import resolve_model

    src = resolve_model("conv:6:3 relu maxpool:2 conv:5:3", input_size=(3, 20, 20))
    engine = Engine(src)
    x = torch.rand(1, 3, 20, 20)
    photo = Photo(torch.zeros(3, 20, 20, dtype=torch.uint8), torch.zeros(1, 3, 20, 20, dtype=torch.uint8), x,
                  None, "PNG")  # type: ignore[arg-type]
    got = engine.unit(photo, "features.block2", 3, 2, 4)
    conv = src.model.get_submodule("features.block2.conv")
    assert float(got.contributions.sum()) + float(conv.bias[3].detach()) == pytest.approx(got.value, abs=1e-5)
    with torch.no_grad():
        pooled = src.model.get_submodule("features.block1")(x)
    torch.testing.assert_close(got.inputs, pooled[0])
    with torch.no_grad():
        expected = float(conv(pooled)[0, 3, 2, 4])
    assert got.value == pytest.approx(expected, abs=1e-5)
