"""Registry, model contract, spec builder, local weights and ImageNet class names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.errors import ModelError
from cnnlab.models import (
    ModelContract,
    create_model,
    imagenet_classes,
    list_models,
    model_info,
    register_model,
)
from cnnlab.models.spec import (
    Conv,
    Factorised,
    Head,
    Inception,
    MaxPool,
    ReLU,
    Residual,
    build_from_spec,
    parse_spec,
)

COURSE = ["mnist_cnn", "mnist_cnn_gap", "cats_cnn", "cats_cnn_dropout", "mnist_mlp"]


def test_list_and_info() -> None:
    names = list_models()
    for n in [
        "mnist_cnn_base",
        *COURSE,
        "vgg16",
        "resnet18",
        "resnet50",
        "inception_v3",
        "efficientnet_lite0",
    ]:
        assert n in names
    info = model_info("efficientnet_lite0")
    assert info["pretrained_offline"] is True and info["input_size"] == [3, 224, 224]
    assert model_info("mnist_cnn")["pretrained"] is None
    assert model_info("inception_v3")["input_size"] == [3, 299, 299]


def test_duplicate_registration_raises() -> None:
    with pytest.raises(ModelError, match="already registered"):
        register_model("mnist_cnn")(lambda **kw: None)  # type: ignore[arg-type,return-value]


def test_unknown_name_lists_close_names() -> None:
    with pytest.raises(ModelError) as err:
        create_model("resnet19")
    msg = str(err.value)
    assert "\n" not in msg and "resnet18" in msg


def test_no_pretrained_for_course_nets() -> None:
    with pytest.raises(ModelError, match="`weights` FILE"):
        create_model("mnist_cnn", pretrained=True)


@pytest.mark.parametrize("name", COURSE)
def test_contract_course(name: str) -> None:
    m = create_model(name).eval()
    assert isinstance(m, ModelContract)
    x = torch.rand(2, *((1, 28, 28) if name.startswith("mnist") else (3, 150, 150)))
    with torch.no_grad():
        assert torch.equal(m(x), m.forward_head(m.forward_features(x)))
        m.reset_classifier(7)
        assert m(x).shape == (2, 7)
    for b in m.blocks:
        m.get_submodule(b)


def test_num_classes_and_in_chans() -> None:
    m = create_model("mnist_cnn", num_classes=3, in_chans=3)
    assert m(torch.zeros(1, 3, 28, 28)).shape == (1, 3)
    assert create_model("cats_cnn").classifier_layer().out_features == 1


def test_base_has_no_classifier() -> None:
    with pytest.raises(ModelError, match="without a classifier"):
        create_model("mnist_cnn_base").classifier_layer()


# --------------------------------------------------------------------------------------------- spec builder


def test_spec_string_equals_dataclasses() -> None:
    a = build_from_spec(
        "conv:8:3 relu maxpool:2 conv:16:3:stride=2:padding=1 relu",
        head="gap",
        input_size=(1, 28, 28),
        num_classes=4,
    )
    b = build_from_spec(
        [Conv(8, 3), ReLU(), MaxPool(2), Conv(16, 3, stride=2, padding=1), ReLU()],
        head=Head("gap"),
        input_size=(1, 28, 28),
        num_classes=4,
    )
    assert [(k, tuple(v.shape)) for k, v in a.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in b.state_dict().items()
    ]
    assert a.blocks == ["features.block1", "features.block2"]
    assert a.default_cam_layer == "features.block2.relu"


def test_residual_projection_only_when_shapes_change() -> None:
    net = build_from_spec(
        [Conv(8, 3, padding=1), Residual(8), Residual(16, stride=2)],
        head="gap",
        input_size=(3, 32, 32),
        num_classes=2,
    )
    same, proj = net.features.block2.res, net.features.block3.res
    assert isinstance(same.shortcut, nn.Identity)
    assert isinstance(proj.shortcut[0], nn.Conv2d) and proj.shortcut[0].kernel_size == (1, 1)
    assert proj.shortcut[0].stride == (2, 2)
    x = torch.randn(1, 3, 32, 32)
    assert net.forward_features(x).shape == (1, 16, 16, 16)


def test_inception_and_factorised() -> None:
    spec = (
        "conv:8:3:padding=1 "
        "inception(conv:4:1 | conv:4:1,conv:6:3:padding=1 | maxpool:3:stride=1:padding=1,conv:2:1)"
    )
    net = build_from_spec(spec, head="gap", input_size=(3, 16, 16), num_classes=2)
    assert net.forward_features(torch.zeros(1, 3, 16, 16)).shape == (1, 12, 16, 16)
    layers = parse_spec(spec)
    assert isinstance(layers[1], Inception) and len(layers[1].branches) == 3
    fact = build_from_spec([Factorised(5, 7)], head="gap", input_size=(2, 12, 12), num_classes=2)
    f = fact.features.block1.fact
    assert f.conv1xn.kernel_size == (1, 7) and f.convnx1.kernel_size == (7, 1)
    assert fact.forward_features(torch.zeros(1, 2, 12, 12)).shape == (1, 5, 12, 12)


def test_flatten_head_with_hidden_and_dropout() -> None:
    net = build_from_spec(
        "conv:4:3 relu", head=Head("flatten", hidden=5, dropout=0.3), input_size=(1, 6, 6), num_classes=3
    )
    assert net.head.fc1.in_features == 4 * 4 * 4 and net.head.drop.p == 0.3


def test_spec_errors_name_the_token() -> None:
    with pytest.raises(ModelError, match="'bogus:3'"):
        parse_spec("conv:8:3 bogus:3")
    with pytest.raises(ModelError, match="too small"):
        build_from_spec("conv:8:5 maxpool:2 conv:8:5", head="flatten", input_size=(1, 8, 8))


def test_fixed_filter_layer_kind() -> None:
    pytest.importorskip("cnnlab.filters")
    net = build_from_spec("fixed:sobel relu maxpool:2", head="gap", input_size=(1, 16, 16), num_classes=2)
    conv = net.features.block1.fixed
    assert type(conv).__name__ == "FixedFilterConv2d" and not conv.weight.requires_grad
    assert net(torch.rand(1, 1, 16, 16)).shape == (1, 2)


# --------------------------------------------------------------------------------------------- weights files


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_weights_roundtrip(tmp_path: Path, suffix: str) -> None:
    from safetensors.torch import save_file

    src = create_model("mnist_cnn")
    path = tmp_path / f"w{suffix}"
    sd = {k: v.contiguous() for k, v in src.state_dict().items()}
    save_file(sd, str(path)) if suffix == ".safetensors" else torch.save(sd, path)
    dst = create_model("mnist_cnn", pretrained=str(path))
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k])


def test_local_weights_mismatch_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(create_model("mnist_cnn_gap").state_dict(), path)
    with pytest.raises(ModelError) as err:
        create_model("mnist_cnn", pretrained=str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    bad = tmp_path / "shape.pth"
    torch.save(create_model("mnist_cnn", num_classes=3).state_dict(), bad)
    with pytest.raises(ModelError, match=r"head\.fc"):
        create_model("mnist_cnn", pretrained=str(bad))
    with pytest.raises(ModelError, match="no such file"):
        create_model("mnist_cnn", pretrained=str(tmp_path / "missing.pth"))


def test_torchvision_file_loads_into_zoo_model(tmp_path: Path) -> None:
    import torchvision

    up = torchvision.models.resnet18()
    path = tmp_path / "resnet18-upstream.pth"
    torch.save(up.state_dict(), path)
    net = create_model("resnet18", pretrained=str(path)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(x), up.eval()(x))
    assert net.pretrained_cfg is not None and net.pretrained_cfg.source == str(path)


def test_imagenet_classes_come_from_timm() -> None:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    names = imagenet_classes()
    assert names == [info.index_to_description(i) for i in range(1000)]
    assert names[281].startswith("tabby")
    raw = Path(__file__).parents[2] / "src/cnnlab/models/imagenet_classes.json"
    assert json.loads(raw.read_text()) == names


def _stated_counts(description: str) -> list[tuple[float, float]]:
    """(value, precision) of every parameter count a description states: "93,322 params", "11.7M"."""
    import re

    found = []
    for number, unit in re.findall(r"(\d[\d,]*(?:\.\d+)?)(M)? params", description.replace(" (", " ")):
        if unit:
            decimals = len(number.partition(".")[2])
            found.append((float(number) * 1e6, 0.5 * 10 ** (6 - decimals)))
        else:
            found.append((float(number.replace(",", "")), 0.5))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_each_description_states_the_parameter_count_summary_prints(name: str) -> None:
    from cnnlab.models._registry import get_entry
    from cnnlab.summary import summarize

    info = model_info(name)
    stated = _stated_counts(info["description"])
    assert stated, f"{name}: the description states no parameter count: {info['description']!r}"
    total = summarize(create_model(name).eval(), get_entry(name).input_size).total_params
    value, precision = stated[0]  # the first count is the model as built (inception_v3: no aux head)
    assert abs(total - value) <= precision, (name, total, info["description"])
