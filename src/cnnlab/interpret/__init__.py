"""Interpretation: scoped hooks, feature maps, filter visualisation, the CAM family, faithfulness."""

from .cam import CAM_METHODS, CamResult, explain, gradcam, register_cam_method, top_channels
from .hooks import Capture, capture, layer_names, resolve_layer

__all__ = [
    "CAM_METHODS",
    "CamResult",
    "Capture",
    "capture",
    "explain",
    "gradcam",
    "layer_names",
    "register_cam_method",
    "resolve_layer",
    "top_channels",
]
