"""The course CNNs (Chollet, *Deep Learning with Python*), layer for layer.

All convolutions are 3x3, stride 1, "valid" padding, with ReLU; pools are 2x2 max pools:

* ``mnist_cnn_base``: Conv32 - pool - Conv64 - pool - Conv64: 1x28x28 -> 64x3x3, 55,744 params
  (the convolutional base alone: no classifier, it returns the feature maps).
* ``mnist_cnn``: base + Flatten + Dense 64 (ReLU) + Dense 10: 93,322 params.
* ``mnist_cnn_gap``: base + global average pooling + Dense 10: 56,394 params.
* ``cats_cnn``: 3x150x150, Conv32/64/128/128 each followed by a pool, GAP, Dense 512 (ReLU), Dense 1
  (one logit: cat vs dog): 307,393 params.
* ``cats_cnn_dropout``: ``cats_cnn`` with Dropout(0.5) right before the output dense layer.
"""

from __future__ import annotations

from ._registry import register_model
from .spec import Conv, Head, MaxPool, ReLU, SpecNet, build_from_spec

MNIST_BASE = [Conv(32, 3), ReLU(), MaxPool(2), Conv(64, 3), ReLU(), MaxPool(2), Conv(64, 3), ReLU()]
CATS_BASE = [layer for out in (32, 64, 128, 128) for layer in (Conv(out, 3), ReLU(), MaxPool(2))]


@register_model(
    "mnist_cnn_base",
    family="course",
    input_size=(1, 28, 28),
    num_classes=10,
    description="course convolutional base: 3 conv layers 32-64-64, 1x28x28 -> 64x3x3, no classifier",
)
def mnist_cnn_base(*, num_classes: int = 10, in_chans: int = 1, pretrained: bool = False) -> SpecNet:
    """The course's convolutional base alone (55,744 params): it returns the 64x3x3 feature maps.

    ``num_classes`` is accepted for a uniform signature but unused: the base has no classifier.
    """
    return build_from_spec(MNIST_BASE, head=Head("none"), input_size=(in_chans, 28, 28))


@register_model(
    "mnist_cnn",
    family="course",
    input_size=(1, 28, 28),
    num_classes=10,
    description="course MNIST convnet: base + flatten + dense 64 + dense 10 (93,322 params)",
)
def mnist_cnn(*, num_classes: int = 10, in_chans: int = 1, pretrained: bool = False) -> SpecNet:
    """The course's MNIST convnet: base + Flatten + Dense(64, relu) + Dense(10)."""
    return build_from_spec(
        MNIST_BASE, head=Head("flatten", hidden=64), input_size=(in_chans, 28, 28), num_classes=num_classes
    )


@register_model(
    "mnist_cnn_gap",
    family="course",
    input_size=(1, 28, 28),
    num_classes=10,
    description="course MNIST convnet with global average pooling + dense 10 (56,394 params)",
)
def mnist_cnn_gap(*, num_classes: int = 10, in_chans: int = 1, pretrained: bool = False) -> SpecNet:
    """The course's base + global average pooling + Dense(10)."""
    return build_from_spec(
        MNIST_BASE, head=Head("gap"), input_size=(in_chans, 28, 28), num_classes=num_classes
    )


@register_model(
    "cats_cnn",
    family="course",
    input_size=(3, 150, 150),
    num_classes=1,
    description="course cats-vs-dogs convnet 32-64-128-128, GAP, dense 512, 1 logit (307,393)",
)
def cats_cnn(*, num_classes: int = 1, in_chans: int = 3, pretrained: bool = False) -> SpecNet:
    """The course's cats-vs-dogs convnet: four conv+pool blocks, GAP, Dense(512, relu), Dense(1)."""
    return build_from_spec(
        CATS_BASE, head=Head("gap", hidden=512), input_size=(in_chans, 150, 150), num_classes=num_classes
    )


@register_model(
    "cats_cnn_dropout",
    family="course",
    input_size=(3, 150, 150),
    num_classes=1,
    description="cats_cnn with Dropout(0.5) before the dense output layer",
)
def cats_cnn_dropout(*, num_classes: int = 1, in_chans: int = 3, pretrained: bool = False) -> SpecNet:
    """``cats_cnn`` with Dropout(0.5) right before the output Dense(1)."""
    return build_from_spec(
        CATS_BASE,
        head=Head("gap", hidden=512, dropout=0.5),
        input_size=(in_chans, 150, 150),
        num_classes=num_classes,
    )
