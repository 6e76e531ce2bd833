"""1-D convnets for series: the FCN and ResNet of Wang, Yan & Oates (2017), as registered models.

"Time series classification from scratch with deep neural networks: a strong baseline" (IJCNN 2017)
and its reproduction by Fawaz et al. (2019, "Deep learning for time series classification: a
review", the ``dl-4-tsc`` code) define the two reference deep models of the UCR/UEA archive:

* ``fcn1d``: three convolutions (128 filters of 8, 256 of 5, 128 of 3; "same" padding), each with
  batch-norm and ReLU, then global average pooling and a dense softmax layer. 264,704 parameters
  before the classifier (+ 129 x classes for it) on a univariate series.
* ``resnet1d``: three residual blocks of 64, 128, 128 filters (each: convolutions of 8, 5, 3 with
  batch-norm, a 1-wide convolution + batch-norm shortcut where the channels change, batch-norm alone
  where they do not), global average pooling, dense softmax.

Both are layer-spec networks (``conv1d``/``bn1d``/``res1d`` layers, resolved as every spec is), so
they follow the model contract, have a default CAM layer (the last ReLU before the pooling, the map
Wang et al. draw their class activation maps from) and train, summarise and explain like the 2-D nets.
Their recommended training options (:data:`SERIES_DEFAULTS`) are for the archive's small training sets.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._registry import create_model, register_model
from .spec import SpecNet

#: Layers of the FCN (Wang et al. 2017, Fig. 1): conv-BN-ReLU x 3, "same" padding, no pooling between.
FCN_LAYERS = ("conv1d:128:8:padding=same bn1d relu conv1d:256:5:padding=same bn1d relu "
              "conv1d:128:3:padding=same bn1d relu")
#: Layers of their ResNet: three residual blocks (kernels 8, 5, 3 inside each).
RESNET_LAYERS = "res1d:64 res1d:128 res1d:128"
#: Default input of both: a univariate series of GunPoint's length (150 samples).
SERIES_INPUT = (1, 150)


@dataclass(frozen=True)
class SeriesNet:
    """One registered 1-D network: its layer spec and a one-line description."""

    name: str
    layers: str
    description: str

    def build(self, *, num_classes: int | None = None, in_chans: int | None = None,
              pretrained: bool = False) -> SpecNet:
        """The network (``pretrained`` is accepted for the uniform builder signature: none exist)."""
        net = create_model(self.layers, num_classes=2 if num_classes is None else num_classes,
                           in_chans=in_chans or SERIES_INPUT[0])  # the spec source builds it (GAP head)
        assert isinstance(net, SpecNet)
        return net


SERIES_NETS = [
    SeriesNet("fcn1d", FCN_LAYERS,
              "FCN of Wang et al. 2017 for series: conv1d 128/8, 256/5, 128/3 + BN + ReLU, GAP, dense "
              "(264,962 params)"),
    SeriesNet("resnet1d", RESNET_LAYERS,
              "ResNet of Wang et al. 2017 for series: 3 residual blocks (64, 128, 128; kernels 8-5-3), GAP "
              "(504,258 params)"),
]

for _net in SERIES_NETS:
    register_model(_net.name, family="series", input_size=SERIES_INPUT, num_classes=2,
                   description=_net.description)(_net.build)
