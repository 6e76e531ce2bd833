"""Acceptance 1: the course tables (Chollet, Deep Learning with Python) reproduced exactly.

Expected rows are the Keras ``model.summary()`` tables of the course (channels-last there, [C, H, W] here).
Mult-adds are torchinfo's own totals; the course figures 2.79M / 2.82M / 2.79M / 234.16M are their
rounding, and the exact counts are also recomputed independently from Keras' parameter table
(params x output positions, how torchinfo counts conv and dense layers).
"""

from __future__ import annotations

import pytest
import torch
from torchinfo import summary as ti_summary

from cnnlab.models import create_model
from cnnlab.summary import summarize

# (layer, output [C, H, W] or [N], params) from the course tables
MNIST_BASE_ROWS = [
    ("features.block1.conv", [32, 26, 26], 320),
    ("features.block1.pool", [32, 13, 13], 0),
    ("features.block2.conv", [64, 11, 11], 18_496),
    ("features.block2.pool", [64, 5, 5], 0),
    ("features.block3.conv", [64, 3, 3], 36_928),
]
MNIST_DENSE_ROWS = [("head.flatten", [576], 0), ("head.fc1", [64], 36_928), ("head.fc", [10], 650)]
MNIST_GAP_ROWS = [("head.pool", [64], 0), ("head.fc", [10], 650)]
# the course's dense baseline: Flatten -> Dense(512, relu) -> Dense(10)
MNIST_MLP_ROWS = [("head.flatten", [784], 0), ("head.fc1", [512], 401_920), ("head.fc", [10], 5_130)]
CATS_ROWS = [
    ("features.block1.conv", [32, 148, 148], 896),
    ("features.block1.pool", [32, 74, 74], 0),
    ("features.block2.conv", [64, 72, 72], 18_496),
    ("features.block2.pool", [64, 36, 36], 0),
    ("features.block3.conv", [128, 34, 34], 73_856),
    ("features.block3.pool", [128, 17, 17], 0),
    ("features.block4.conv", [128, 15, 15], 147_584),
    ("features.block4.pool", [128, 7, 7], 0),
    ("head.pool", [128], 0),
    ("head.fc1", [512], 66_048),
    ("head.fc", [1], 513),
]

CASES = [
    ("mnist_cnn_base", (1, 28, 28), MNIST_BASE_ROWS, 55_744, "2.79M"),
    ("mnist_cnn", (1, 28, 28), MNIST_BASE_ROWS + MNIST_DENSE_ROWS, 93_322, "2.82M"),
    ("mnist_cnn_gap", (1, 28, 28), MNIST_BASE_ROWS + MNIST_GAP_ROWS, 56_394, "2.79M"),
    ("cats_cnn", (3, 150, 150), CATS_ROWS, 307_393, "234.16M"),
    ("cats_cnn_dropout", (3, 150, 150), CATS_ROWS, 307_393, "234.16M"),
    ("mnist_mlp", (1, 28, 28), MNIST_MLP_ROWS, 407_050, "0.41M"),
]


def _independent_mult_adds(rows: list[tuple[str, list[int], int]]) -> int:
    # torchinfo's rule: conv params x output positions; dense params x 1 (batch 1).
    total = 0
    for _, shape, params in rows:
        positions = shape[1] * shape[2] if len(shape) == 3 else 1
        total += params * positions
    return total


@pytest.mark.parametrize(("name", "size", "rows", "total", "course_madds"), CASES, ids=[c[0] for c in CASES])
def test_course_table(
    name: str, size: tuple[int, int, int], rows: list, total: int, course_madds: str
) -> None:
    model = create_model(name)
    s = summarize(model, size, model_name=name)
    assert s.total_params == total == sum(p.numel() for p in model.parameters())
    assert s.trainable_params == total
    for layer, shape, params in rows:
        rec = s.layer(layer)
        assert rec.output_shape == shape, layer
        assert rec.params == params, layer
    assert sum(p for _, _, p in rows) == total  # the table's rows add up to its total
    assert s.mult_adds == _independent_mult_adds(rows)
    assert f"{s.mult_adds / 1e6:.2f}M" == course_madds
    # the summary's totals are torchinfo's own
    ti = ti_summary(create_model(name), input_size=(1, *size), verbose=0)
    assert (s.total_params, s.mult_adds) == (ti.total_params, ti.total_mult_adds)


def test_mnist_base_maps_28_to_64x3x3() -> None:
    model = create_model("mnist_cnn_base").eval()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 64, 3, 3)


def test_cats_dropout_sits_right_before_the_output_dense() -> None:
    head = create_model("cats_cnn_dropout").head
    kinds = [type(m).__name__ for m in head.children()]
    assert kinds[-2:] == ["Dropout", "Linear"]
    assert head.drop.p == 0.5
    assert "Dropout" not in [type(m).__name__ for m in create_model("cats_cnn").modules()]


@pytest.mark.parametrize("name", ["mnist_cnn", "mnist_cnn_gap", "cats_cnn"])
def test_cam_layer_is_last_conv_relu(name: str) -> None:
    model = create_model(name)
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    cam = model.default_cam_layer
    assert isinstance(model.get_submodule(cam), torch.nn.ReLU)
    assert cam.rsplit(".", 1)[0] == convs[-1].rsplit(".", 1)[0]  # same block as the last conv
    assert model.blocks == [f"features.block{i}" for i in range(1, len(convs) + 1)]


def test_mnist_mlp_is_dense_only() -> None:
    model = create_model("mnist_mlp")
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
