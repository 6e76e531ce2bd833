"""1-D convnets: the spec layers, FCN/ResNet of Wang et al. (2017), summaries against torchinfo and
receptive fields against the exact gradient oracle (as tests/summary/test_summary_rf.py does for 2-D)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn
from torchinfo import summary as ti_summary

from _rf_oracle import oracle_fields
from cnnlab.errors import ModelError
from cnnlab.models import create_model
from cnnlab.models.base import ModelContract
from cnnlab.models.spec import build_from_spec
from cnnlab.summary import summarize

# FCN on a univariate series: conv 1*128*8+128, BN 2*128, conv 128*256*5+256, BN 2*256, conv 256*128*3+128,
# BN 2*128 = 264,704 before the classifier (hand count of Wang et al.'s Fig. 1 layers).
FCN_FEATURE_PARAMS = 1_152 + 256 + 164_096 + 512 + 98_432 + 256


def _check_fields(model: nn.Module, size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    s = summarize(model, size)
    timed = [r for r in s.layers if r.depth > 0 and r.field is not None and not r.field.is_global]
    assert timed
    got = {r.name: r.field.rf for r in timed}
    assert got == oracle_fields(model, size, sorted(got))
    return got


@pytest.mark.parametrize("name", ["fcn1d", "resnet1d"])
def test_registered_models_follow_the_contract(name: str) -> None:
    model = create_model(name, num_classes=3, in_chans=2)
    assert isinstance(model, ModelContract)
    x = torch.randn(4, 2, 77)
    f = model.forward_features(x)
    assert f.shape[:2] == (4, 128) and f.shape[2] == 77  # "same" padding keeps the length
    assert model.forward_head(f).shape == (4, 3)
    assert model.default_cam_layer == "features.block3.relu" if name == "fcn1d" else "features.block3.res1d"
    model.get_submodule(model.default_cam_layer)
    model.reset_classifier(5)
    assert model(x).shape == (4, 5)


@pytest.mark.parametrize("name", ["fcn1d", "resnet1d"])
def test_summary_equals_torchinfo(name: str) -> None:
    model = create_model(name, num_classes=2)
    s = summarize(model, (1, 150), model_name=name)
    ti = ti_summary(model, input_size=(1, 1, 150), verbose=0, depth=100, mode="eval")
    assert s.total_params == ti.total_params == sum(p.numel() for p in model.parameters())
    assert s.mult_adds == ti.total_mult_adds
    theirs = {(i.class_name, tuple(i.output_size[1:]), max(i.num_params, 0)) for i in ti.summary_list}
    ours = {(r.type, tuple(r.output_shape), r.params) for r in s.layers}
    assert ours == theirs


def test_fcn_parameter_count_matches_the_architecture_of_wang_et_al() -> None:
    model = create_model("fcn1d", num_classes=2)
    features = sum(p.numel() for p in model.features.parameters())
    assert features == FCN_FEATURE_PARAMS == 264_704
    assert sum(p.numel() for p in model.head.parameters()) == 128 * 2 + 2


@pytest.mark.parametrize("name", ["fcn1d", "resnet1d"])
def test_receptive_field_of_every_layer_equals_the_gradient_oracle(name: str) -> None:
    got = _check_fields(create_model(name), (1, 400))
    # FCN: 1 + 7 + 4 + 2 samples; ResNet: three blocks of 7 + 4 + 2 each
    assert max(v[0] for v in got.values()) == (14 if name == "fcn1d" else 40)


def test_spec_with_pools_strides_dilation_and_residuals() -> None:
    spec = ("conv1d:8:5:stride=2 bn1d relu maxpool1d:3:stride=2 conv1d:8:3:dilation=4:padding=same relu "
            "avgpool1d:2 res1d:16 conv1d:8:3:padding=1 relu")
    net = build_from_spec(spec, head="gap", input_size=(2, 600), num_classes=3)
    got = _check_fields(net, (2, 600))
    assert len(got) >= 8


def test_mixed_or_misshaped_specs_are_refused() -> None:
    with pytest.raises(ModelError, match="mixes 1-D"):
        build_from_spec("conv1d:8:3 conv:8:3", input_size=(1, 64))
    with pytest.raises(ModelError, match="CxL"):
        build_from_spec("conv1d:8:3 relu", input_size=(1, 1, 128))


def _cnnlab(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "cnnlab", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_cli_summary_of_a_1d_spec_and_its_input_errors() -> None:
    r = _cnnlab("summary", "conv1d:8:3 relu", "--input", "1x128", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["input_size"] == [1, 128]
    conv = next(layer for layer in doc["layers"] if layer["type"] == "Conv1d")
    assert conv["output_shape"] == [8, 126] and conv["params"] == 8 * 3 + 8 and conv["receptive_field"] == 3
    bad = _cnnlab("summary", "conv1d:8:3 relu", "--input", "1x1x128")
    assert bad.returncode == 2 and "--input 1x1x128: give it as CxL" in bad.stderr
    fcn = _cnnlab("summary", "fcn1d", "--input", "1x150", "--json")
    assert fcn.returncode == 0, fcn.stderr
    assert json.loads(fcn.stdout)["total_params"] == 264_704 + 128 * 2 + 2
