"""Building blocks: residual, inception (parallel branches), factorised conv; the heads surgery fits.

The blocks of spec-built networks (:mod:`cnnlab.models.spec`), and the modules
:mod:`cnnlab.models.surgery` puts into models: :class:`MLPHead` and :class:`ForwardHead`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """ResNet basic block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``.

    The shortcut is the identity when shapes match, else a 1x1 convolution (with batch-norm) of the
    block's stride that projects ``in_channels`` to ``out_channels`` (He et al. 2016, option B).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the first 3x3 convolution (and of the projection).
        kernel_size: Kernel of both convolutions (odd; padded to keep the size at stride 1).
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class ResidualBlock1d(nn.Module):
    """The residual block of Wang, Yan & Oates (2017) along time: three "same" convolutions, one shortcut.

    ``relu(bn(conv_k3(relu(bn(conv_k2(relu(bn(conv_k1(x))))))))) + shortcut(x))`` with kernels 8, 5, 3 by
    default; the shortcut is a 1-wide convolution plus batch-norm when the channels change, else
    batch-norm alone (their Keras code, as reproduced by Fawaz et al. 2019).

    Args:
        in_channels: Input channels.
        out_channels: Channels of every convolution.
        kernels: The three kernel lengths.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, kernels: tuple[int, int, int] = (8, 5, 3)
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernels[0], padding="same")
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernels[1], padding="same")
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv1d(out_channels, out_channels, kernels[2], padding="same")
        self.bn3 = nn.BatchNorm1d(out_channels)
        self.shortcut: nn.Module
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1), nn.BatchNorm1d(out_channels)
            )
        else:
            self.shortcut = nn.BatchNorm1d(out_channels)
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.relu2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu3(y + self.shortcut(x))


class InceptionBlock(nn.Module):
    """Parallel branches on the same input, concatenated along channels (Szegedy et al. 2015).

    Args:
        branches: One ``nn.Module`` per branch; all must give the same height and width.
    """

    def __init__(self, branches: Sequence[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        sizes = {tuple(o.shape[2:]) for o in outs}
        if len(sizes) > 1:
            raise RuntimeError(
                f"inception branches give different spatial sizes {sorted(sizes)}; pad them equally"
            )
        return torch.cat(outs, dim=1)


class FactorisedConv(nn.Sequential):
    """An n x n convolution factorised as 1 x n then n x 1 (Inception v3): same field, fewer weights.

    Args:
        in_channels: Input channels.
        out_channels: Output channels (of both convolutions).
        n: Kernel length.
        padding: "same" keeps the size (``n // 2`` on the long side), "valid" pads nothing.
    """

    def __init__(self, in_channels: int, out_channels: int, n: int, *, padding: str = "same") -> None:
        p = n // 2 if padding == "same" else 0
        super().__init__()
        self.conv1xn = nn.Conv2d(in_channels, out_channels, (1, n), padding=(0, p))
        self.convnx1 = nn.Conv2d(out_channels, out_channels, (n, 1), padding=(p, 0))


class MLPHead(nn.Sequential):
    """``--head mlp``: ``Linear(in, hidden) -> ReLU -> Dropout -> Linear(hidden, num_classes)``."""

    def __init__(
        self, in_features: int, num_classes: int, *, hidden: int = 512, dropout: float = 0.5
    ) -> None:
        super().__init__(
            nn.Linear(in_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        self.in_features = in_features


class ForwardHead(nn.Module):
    """``model.forward_head`` as a module that registers only ``model.head``'s parameters."""

    _model: Any

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.head = cast(nn.Module, model.head)
        object.__setattr__(self, "_model", model)  # not a submodule: the backbone's params stay out

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self._model.forward_head(f))
