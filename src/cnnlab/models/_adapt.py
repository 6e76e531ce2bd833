"""Fit a built model to other data: number of classes and input channels (pretrained weights kept)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def first_conv_name(model: nn.Module) -> str | None:
    """Dotted name of the first ``nn.Conv2d`` in registration order (the stem of every cnnlab model)."""
    return next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def adapt_in_chans(model: nn.Module, in_chans: int) -> None:
    """Give the first conv ``in_chans`` input channels, folding/repeating its kernels (timm's rule).

    A grey image through the new kernels gives what the image copied to RGB gives through the old ones.
    """
    from timm.models import adapt_input_conv

    name = first_conv_name(model)
    if name is None:
        return
    old: Any = model.get_submodule(name)
    if old.in_channels == in_chans:
        return
    # timm's Conv2dSame takes nn.Conv2d's arguments; other subclasses (a filter-bank layer) become plain convs
    cls = type(old) if type(old) is nn.Conv2d or type(old).__module__.startswith("timm.") else nn.Conv2d
    new = cls(
        in_chans,
        old.out_channels,
        old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        dilation=old.dilation,
        groups=old.groups,
        bias=old.bias is not None,
    )
    with torch.no_grad():
        new.weight.copy_(adapt_input_conv(in_chans, old.weight))
        if old.bias is not None:
            new.bias.copy_(old.bias)  # type: ignore[union-attr]
    new.weight.requires_grad_(old.weight.requires_grad)
    parent_name, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, leaf, new)


def adapt_model(model: Any, *, num_classes: int, in_chans: int) -> None:
    """Resize the classifier (fresh layer) and the first conv (adapted kernels) where they differ."""
    from ..errors import ModelError

    try:
        out = model.classifier_layer().out_features
    except (ModelError, TypeError):  # a base without classifier (mnist_cnn_base) has nothing to resize
        out = num_classes
    if out != num_classes:
        model.reset_classifier(num_classes)
    adapt_in_chans(model, in_chans)
