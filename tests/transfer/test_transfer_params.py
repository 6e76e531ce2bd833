"""Freezing modes, parameter counts, optimizer groups, heads and grey stems (acceptance 1 and 5)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transfer_models import TinyNet, resnet18

from cnnlab.errors import ModelError, TrainingError
from cnnlab.models.surgery import adapt_in_chans, configure_head
from cnnlab.transfer.freezing import (
    apply_transfer,
    count_params,
    param_groups,
    requires_grad_map,
    set_frozen_bn_eval,
)
from cnnlab.transfer.policy import FreezePolicy


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_resnet18_counts_per_mode() -> None:
    model = resnet18(num_classes=1)
    total = _numel(model)
    assert total == 11_177_025  # torchvision resnet18 with a 1-output fc
    features = apply_transfer(model, mode="features")
    assert (features.trainable, features.frozen) == (513, total - 513)
    partial = apply_transfer(model, mode="partial")
    layer4 = _numel(model.get_submodule(model.blocks[-1]))
    assert model.blocks[-1].endswith("layer4")
    assert partial.trainable == layer4 + 513 and partial.total == total
    assert apply_transfer(model, mode="full").trainable == total
    assert apply_transfer(model, mode="scratch").trainable == total


def test_partial_unfreeze_n_and_named_layers() -> None:
    model = resnet18(num_classes=1)
    two = apply_transfer(model, mode="partial", unfreeze=2)
    expected = sum(_numel(model.get_submodule(b)) for b in model.blocks[-2:]) + 513
    assert two.trainable == expected
    named = apply_transfer(model, mode="partial", unfreeze_layers=[model.blocks[-2]])
    assert named.trainable == _numel(model.get_submodule(model.blocks[-2])) + 513
    grads = requires_grad_map(model)
    assert all(flag for name, flag in grads.items() if name.startswith(model.blocks[-2] + "."))
    assert not any(flag for name, flag in grads.items() if name.startswith(model.blocks[-1] + "."))


def test_train_bn_makes_bn_affine_trainable() -> None:
    model = resnet18(num_classes=1)
    bn = sum(_numel(m) for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert apply_transfer(model, mode="features", train_bn=True).trainable == 513 + bn


def test_unknown_blocks_name_unfreeze_layers() -> None:
    model = TinyNet(blocks=False)
    with pytest.raises(ModelError, match="unfreeze_layers"):
        apply_transfer(model, mode="partial")
    with pytest.raises(ModelError, match=r"unfreeze_layers 'features\.nope'.*features\.s1"):
        apply_transfer(model, mode="partial", unfreeze_layers=["features.nope"])
    with pytest.raises(ModelError, match=r"^unfreeze 4"):
        apply_transfer(TinyNet(), mode="partial", unfreeze=4)
    with pytest.raises(TrainingError, match=r"^fine_tune_epochs 2: needs `transfer` partial or full"):
        FreezePolicy(mode="features", fine_tune_epochs=2)


def test_param_groups_head_backbone_lr_and_frozen_excluded() -> None:
    model = resnet18(num_classes=1)
    counts = apply_transfer(model, mode="partial")
    groups = param_groups(model, lr=0.01, backbone_lr_mult=0.1, weight_decay=1e-4)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"head", "backbone"}
    assert by_name["head"]["lr"] == 0.01 and by_name["backbone"]["lr"] == pytest.approx(0.001)
    assert sum(p.numel() for g in groups for p in g["params"]) == counts.trainable
    assert {id(p) for p in by_name["head"]["params"]} == {id(p) for p in model.head.parameters()}
    apply_transfer(model, mode="features")
    assert [g["name"] for g in param_groups(model, lr=0.01)] == ["head"]
    assert sum(p.numel() for g in param_groups(model, lr=0.01, include_frozen=True) for p in g["params"]) == (
        _numel(model)
    )
    torch.optim.AdamW(groups)  # the dicts are valid optimizer groups


def test_schedule_policy_groups_hold_backbone_while_frozen() -> None:
    model = TinyNet()
    policy = FreezePolicy(mode="full", fine_tune_epochs=2, backbone_lr_mult=0.1)
    assert [policy.mode_at(e) for e in range(4)] == ["features", "features", "full", "full"]
    policy.apply(model, epoch=0)
    before = requires_grad_map(model)
    groups = {g["name"]: g for g in policy.param_groups(model, lr=1.0)}
    assert requires_grad_map(model) == before  # building the groups leaves the freezing state alone
    assert groups["backbone"]["lr"] == pytest.approx(0.1)
    assert sum(p.numel() for p in groups["backbone"]["params"]) == _numel(model.features)
    assert FreezePolicy(mode="scratch", backbone_lr_mult=0.1).backbone_lr_mult == 1.0


def test_frozen_subtrees_go_to_eval() -> None:
    model = TinyNet()
    apply_transfer(model, mode="partial", unfreeze=1)
    model.train()
    frozen = set_frozen_bn_eval(model)
    assert frozen == ["features.s1", "features.s2"]
    assert not model.features.s1[1].training and not model.features.s2[3].training  # BN and dropout
    assert model.features.s3[1].training and model.head.training
    model.train()
    set_frozen_bn_eval(model, train_bn=True)
    assert model.features.s1[1].training and not model.features.s1[3].training


def test_configure_head_mlp_and_linear() -> None:
    model = TinyNet(num_classes=3)
    configure_head(model, kind="mlp", num_classes=5, hidden=32)
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 5)
    assert [type(m).__name__ for m in model.head[-1]] == ["Linear", "ReLU", "Dropout", "Linear"]
    keys = list(model.state_dict())
    configure_head(model, kind="mlp", num_classes=5, hidden=32)  # again, as load_run does: same structure
    assert list(model.state_dict()) == keys
    counts = apply_transfer(model, mode="features")
    assert counts.trainable == 16 * 32 + 32 + 32 * 5 + 5
    configure_head(model, kind="linear", num_classes=2)
    assert isinstance(model.head[-1], nn.Linear) and model.head[-1].in_features == 16
    linear = TinyNet(num_classes=3)
    configure_head(linear, kind="linear", num_classes=2)
    assert linear.head[-1].out_features == 2 and count_params(linear).frozen == 0


def test_configure_head_logreg_reduces_a_dense_head_to_one_linear() -> None:
    from cnnlab.models import create_model

    model = create_model("mnist_cnn")  # head: flatten -> fc1 -> relu -> fc
    configure_head(model, kind="logreg", num_classes=10)
    assert [type(m).__name__ for m in model.head] == ["Flatten", "Linear"]
    keys = list(model.state_dict())
    configure_head(model, kind="logreg", num_classes=10)
    assert list(model.state_dict()) == keys
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_adapt_in_chans_matches_grey_repeated_to_rgb() -> None:
    model = resnet18(num_classes=1)
    name = next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    conv = model.get_submodule(name)
    rgb_weight = conv.weight.detach().clone()
    grey = torch.rand(2, 1, 32, 32)
    reference = F.conv2d(grey.repeat(1, 3, 1, 1), rgb_weight, stride=conv.stride, padding=conv.padding)
    notice = adapt_in_chans(model, 1)
    assert notice is not None and "adapt_input_conv" in notice and name in notice
    assert conv.in_channels == 1 and conv.weight.shape[1] == 1
    torch.testing.assert_close(conv(grey), reference, rtol=1e-5, atol=1e-5)
    assert model(torch.rand(1, 1, 64, 64)).shape == (1, 1)
    assert adapt_in_chans(model, 1) is None


def test_fixed_filter_layers_stay_frozen_in_every_mode() -> None:
    from torch import nn

    from cnnlab.filters import FixedFilterConv2d
    from cnnlab.models.base import CNNLabModel
    from cnnlab.transfer.freezing import apply_transfer

    class Net(CNNLabModel):
        def __init__(self) -> None:
            super().__init__()
            fixed = FixedFilterConv2d.from_bank("sobel", in_channels=1, trainable=False)
            self.features = nn.Sequential(fixed, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(self.features[0].out_channels, 3)

    for mode in ("scratch", "full", "features"):
        net = Net()
        counts = apply_transfer(net, mode=mode)
        assert not any(p.requires_grad for p in net.features.parameters()), mode
        assert all(p.requires_grad for p in net.head.parameters()), mode
        assert counts.trainable == sum(p.numel() for p in net.head.parameters()), mode
