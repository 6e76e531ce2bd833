"""The course CNNs (Chollet, *Deep Learning with Python*), layer for layer.

All convolutions are 3x3, stride 1, "valid" padding, with ReLU; pools are 2x2 max pools:

* ``mnist_cnn_base``: Conv32 - pool - Conv64 - pool - Conv64: 1x28x28 -> 64x3x3, 55,744 params
  (the convolutional base alone: no classifier, it returns the feature maps).
* ``mnist_cnn``: base + Flatten + Dense 64 (ReLU) + Dense 10: 93,322 params.
* ``mnist_cnn_gap``: base + global average pooling + Dense 10: 56,394 params.
* ``cats_cnn``: 3x150x150, Conv32/64/128/128 each followed by a pool, GAP, Dense 512 (ReLU), Dense 1
  (one logit: cat vs dog): 307,393 params.
* ``cats_cnn_dropout``: ``cats_cnn`` with Dropout(0.5) right before the output dense layer.
* ``mnist_mlp``: the dense baseline the course sets against the convnet: Flatten + Dense 512 (ReLU) +
  Dense 10 on 1x28x28, 407,050 params, no convolution (its ``features`` are empty).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._registry import register_model
from .spec import Conv, Head, MaxPool, ReLU, SpecNet, build_from_spec

MNIST_BASE = [Conv(32, 3), ReLU(), MaxPool(2), Conv(64, 3), ReLU(), MaxPool(2), Conv(64, 3), ReLU()]
CATS_BASE = [layer for out in (32, 64, 128, 128) for layer in (Conv(out, 3), ReLU(), MaxPool(2))]
#: Adam at cnnlab's 1e-3 leaves the cats nets at chance for epochs; 3e-4 learns (BENCHMARKS.md, accuracy).
CATS_DEFAULTS = {"lr": 3e-4}


@dataclass(frozen=True)
class CourseNet:
    """One course network: its layers, head and defaults (registered under ``name``)."""

    name: str
    layers: list[Any]
    head: Head
    input_size: tuple[int, int, int]
    num_classes: int
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)

    def build(self, *, num_classes: int | None = None, in_chans: int | None = None,
              pretrained: bool = False) -> SpecNet:
        """The network (``pretrained`` is accepted for the uniform builder signature: none exist)."""
        c, h, w = self.input_size
        return build_from_spec(self.layers, head=self.head, input_size=(in_chans or c, h, w),
                               num_classes=self.num_classes if num_classes is None else num_classes)


COURSE_NETS = [
    CourseNet("mnist_cnn_base", MNIST_BASE, Head("none"), (1, 28, 28), 10,
              "course convolutional base 32-64-64: 1x28x28 -> 64x3x3, no classifier (55,744 params)"),
    CourseNet("mnist_cnn", MNIST_BASE, Head("flatten", hidden=64), (1, 28, 28), 10,
              "course MNIST convnet: base + flatten + dense 64 + dense 10 (93,322 params)"),
    CourseNet("mnist_cnn_gap", MNIST_BASE, Head("gap"), (1, 28, 28), 10,
              "course MNIST convnet with global average pooling + dense 10 (56,394 params)"),
    CourseNet("cats_cnn", CATS_BASE, Head("gap", hidden=512), (3, 150, 150), 1,
              "course cats-vs-dogs convnet 32-64-128-128, GAP, dense 512, 1 logit (307,393 params)",
              CATS_DEFAULTS),
    CourseNet("cats_cnn_dropout", CATS_BASE, Head("gap", hidden=512, dropout=0.5), (3, 150, 150), 1,
              "cats_cnn with Dropout(0.5) before the dense output layer (307,393 params)", CATS_DEFAULTS),
    CourseNet("mnist_mlp", [], Head("flatten", hidden=512), (1, 28, 28), 10,
              "course dense baseline: flatten + dense 512 + dense 10, no convolution (407,050 params)"),
]

for _net in COURSE_NETS:
    register_model(_net.name, family="course", input_size=_net.input_size, num_classes=_net.num_classes,
                   description=_net.description, defaults=_net.defaults)(_net.build)
