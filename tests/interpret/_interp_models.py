"""Small stand-in models for the interpretation tests (contract-following, random or fixed weights)."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.base import CNNLabModel


class TinyGapNet(CNNLabModel):
    """conv-relu-conv-relu -> GAP -> linear: the CAM-compatible course shape."""

    def __init__(self, in_chans: int = 3, num_classes: int = 4, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, padding=1, stride=2),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes))
        self.default_cam_layer = "features.3"
        self.blocks = ["features.0", "features.2"]


class TinyFlattenNet(CNNLabModel):
    """conv -> flatten -> linear: a head that is NOT global-average-pool + linear."""

    def __init__(self, size: int = 8, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * size * size, num_classes))
        self.default_cam_layer = "features.1"


def all_hook_dicts_empty(model: nn.Module) -> bool:
    for m in model.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            if getattr(m, attr):
                return False
    return True


def param_grads_none(model: nn.Module) -> bool:
    return all(p.grad is None for p in model.parameters())


def seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for p in model.parameters():
        nn.init.normal_(p, std=0.3)
    return model.eval()
