"""Interpretation: scoped hooks, feature maps, filter visualisation, the CAM family, faithfulness.

Importing this package imports torch; ``import cnnlab`` alone does not.
"""

from .cam import (
    CAM_METHODS,
    CamMethod,
    CamResult,
    TopChannels,
    explain,
    gradcam,
    register_cam_method,
    top_channels,
)
from .feature_maps import (
    DeadFilters,
    FeatureMaps,
    channel_across_images,
    dead_filters,
    feature_maps,
    layer_activations,
)
from .filter_vis import FilterVisResult, visualize_filters
from .hooks import Capture, capture, layer_names, resolve_layer
from .metrics import FaithfulnessCurves, deletion_insertion

__all__ = [
    "CAM_METHODS",
    "CamMethod",
    "CamResult",
    "Capture",
    "DeadFilters",
    "FaithfulnessCurves",
    "FeatureMaps",
    "FilterVisResult",
    "TopChannels",
    "capture",
    "channel_across_images",
    "dead_filters",
    "deletion_insertion",
    "explain",
    "feature_maps",
    "gradcam",
    "layer_activations",
    "layer_names",
    "register_cam_method",
    "resolve_layer",
    "top_channels",
    "visualize_filters",
]
