"""A conv layer initialised from a filter bank: a hand-designed first layer, frozen or trainable."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from ..errors import CnnlabError
from .banks import FilterBank, make_bank

ChannelMode = Literal["average", "replicate"]


class FixedFilterConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose kernels come from a :class:`FilterBank` (e.g. Gabor), frozen unless trainable.

    It is a plain ``nn.Conv2d`` afterwards (same forward, same ``state_dict`` keys), so it can replace the
    first conv of any network and its weights load into an ordinary conv layer.

    Example:
        >>> layer = FixedFilterConv2d.from_bank("gabor", in_channels=1, trainable=False, thetas=6)
        >>> layer(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 18, 28, 28])

    Args:
        bank: The bank; its kernels become ``weight`` (``[out, in, kh, kw]``).
        in_channels: Input channels of the layer. A one-channel bank is spread over them by ``channel_mode``.
        channel_mode: "average" (kernel / C on every channel: the response to the channel mean, same scale
            as on a grey image) or "replicate" (the kernel on every channel: the response to their sum).
        trainable: False freezes weight and bias: ``requires_grad=False``, and the forward pass detaches them,
            so they stay fixed even if a whole model is later set ``requires_grad_(True)`` (as transfer
            "scratch" does); change it with the ``trainable`` property. True lets training change them.
        padding: "same" (keeps H x W at stride 1; with the Haar wavelet's stride 2 it is ``(k - 1) // 2``),
            "valid" or an int.
        bias: Add a bias (initialised to zero).

    Raises:
        CnnlabError: when the bank's input channels do not fit ``in_channels``, or a bad ``channel_mode``.
    """

    def __init__(
        self,
        bank: FilterBank,
        *,
        in_channels: int = 1,
        channel_mode: ChannelMode = "average",
        trainable: bool = False,
        padding: Literal["same", "valid"] | int = "same",
        bias: bool = False,
    ) -> None:
        if channel_mode not in ("average", "replicate"):
            raise CnnlabError(f"channel_mode={channel_mode!r}: use 'average' or 'replicate'")
        if in_channels < 1:
            raise CnnlabError(f"in_channels={in_channels}: a conv layer needs at least one input channel")
        weight = bank.weight.to(torch.float32)
        if bank.in_channels != in_channels:
            if bank.in_channels != 1:
                raise CnnlabError(
                    f"bank {bank.name!r} has {bank.in_channels} input channels, the layer {in_channels}; "
                    "build a one-channel bank or match in_channels"
                )
            weight = weight.repeat(1, in_channels, 1, 1)
            if channel_mode == "average":
                weight = weight / in_channels
        kh, kw = bank.kernel_size
        pad: Any = padding
        if padding == "same" and bank.stride > 1:  # nn.Conv2d has no "same" for strided convolutions
            pad = ((kh - 1) // 2, (kw - 1) // 2)
        super().__init__(in_channels, bank.out_channels, (kh, kw), stride=bank.stride, padding=pad, bias=bias)
        with torch.no_grad():
            self.weight.copy_(weight)
            if self.bias is not None:
                self.bias.zero_()
        self.bank_name = bank.name
        self.filter_names = list(bank.names)
        self.filter_params = [dict(p) for p in bank.params]
        self.channel_mode = channel_mode
        self.trainable = trainable

    @property
    def trainable(self) -> bool:
        """Whether the kernels receive gradients; setting it (un)freezes weight and bias."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for p in self.parameters(recurse=False):
            p.requires_grad_(self._trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._trainable:
            return super().forward(x)
        # Frozen by design: no gradient reaches the kernels whatever requires_grad says.
        bias = None if self.bias is None else self.bias.detach()
        return self._conv_forward(x, self.weight.detach(), bias)

    @classmethod
    def from_bank(
        cls,
        name: str,
        *,
        in_channels: int = 1,
        channel_mode: ChannelMode = "average",
        trainable: bool = False,
        padding: Literal["same", "valid"] | int = "same",
        bias: bool = False,
        **bank_params: Any,
    ) -> FixedFilterConv2d:
        """Build the layer from a registered bank: ``from_bank("gabor", in_channels=1, thetas=6)``.

        Args:
            name: Registered bank name (see :func:`cnnlab.filters.list_banks`).
            in_channels: As in the constructor.
            channel_mode: As in the constructor.
            trainable: As in the constructor.
            padding: As in the constructor.
            bias: As in the constructor.
            **bank_params: Parameters of the bank (e.g. ``frequencies``, ``thetas`` for "gabor").

        Returns:
            The layer.
        """
        bank = make_bank(name, **bank_params)
        return cls(bank, in_channels=in_channels, channel_mode=channel_mode, trainable=trainable,
                   padding=padding, bias=bias)

    def extra_repr(self) -> str:
        state = "trainable" if self.trainable else "frozen"
        return f"{super().extra_repr()}, bank={self.bank_name}, {state}"
