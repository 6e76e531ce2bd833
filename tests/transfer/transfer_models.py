"""Models for the transfer tests: cnnlab's resnet18 and a tiny BN + dropout net with known blocks."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.base import CNNLabModel


def resnet18(num_classes: int = 1) -> CNNLabModel:
    """cnnlab's torchvision resnet18, random weights (no download)."""
    from cnnlab.models import create_model

    return create_model("resnet18", num_classes=num_classes)


class TinyNet(CNNLabModel):
    """A small BN + dropout CNN with known blocks (fast training tests)."""

    def __init__(self, num_classes: int = 3, in_chans: int = 3, blocks: bool = True,
                 dropout: float = 0.2) -> None:
        super().__init__()

        def stage(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                                 nn.Dropout2d(dropout))

        self.features = nn.Sequential(OrderedDict(s1=stage(in_chans, 8), s2=stage(8, 16), s3=stage(16, 16)))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(1.5 * dropout),
                                  nn.Linear(16, num_classes))
        self.blocks = [f"features.s{i}" for i in (1, 2, 3)] if blocks else []
        self.default_cam_layer = "features.s3"


def tiny_images(n: int = 48, classes: int = 3, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Learnable uint8 images: class k is brighter in channel k."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randint(0, 120, (n, 3, size, size), generator=g)
    for k in range(classes):
        x[y == k, k % 3] += 100
    return x.to(torch.uint8), y
