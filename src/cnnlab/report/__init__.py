"""Figures and reports: every figure cnnlab draws, as a function of the data the library returns, and the
HTML report.

Each figure function returns a ``matplotlib.figure.Figure`` built without pyplot (no global state):
save it with :func:`cnnlab._io.save_figure`, show it in a notebook, or turn it into PNG bytes with
:func:`figure_png`. Names are imported lazily: ``import cnnlab.report`` loads neither torch nor matplotlib.

The report (``cnnlab report``): :func:`cnnlab.report.assemble.make_report` computes the sections of each run
(``context``, ``sec_*``, ``compare``) as plain data (``document``) and renders one self-contained page
(``html``).

Training and evaluation:

* :func:`curves_figure` — train/validation loss and accuracy per epoch, overfitting onset, chance level.
* :func:`overfitting_onset` — the epoch where validation loss turns up for good (or None).
* :func:`confusion_figure` — the confusion matrix as a heatmap with counts.
* :func:`top_losses_figure` — the highest-loss images with true/predicted class and their CAM.
* :func:`evaluation_html` — accuracy, loss, per-class precision/recall/F1 and confusion matrix as HTML.

Data:

* :func:`sample_grid_figure` — a class-balanced grid of images, titled with their classes.
* :func:`augment_grid_figure` — each image next to several augmented copies of it.
* :func:`save_sample_grid` — write the sample (or augmentation) grid of a data bundle as a PNG.

Classical filters:

* :func:`kernel_grid_figure` — the kernels of a filter bank, titled with their parameters.
* :func:`response_grid_figure` — images x filters: each image's response to every filter.

Geometry of a network:

* :func:`receptive_field_figure` — a unit's theoretical and effective field; field and jump by layer.
* :func:`conv_arithmetic_figure` — one conv/pool layer: grids, kernel windows and the output-size formula.

Inside a network:

* :func:`feature_map_figure` — every channel of one layer for one image (dead channels drawn dead).
* :func:`channel_across_figure` — one channel for several images on one colour scale.
* :func:`filter_vis_figure` — the inputs that maximise each filter (gradient ascent).
* :func:`cam_overlay_figure` — images beside their CAM overlay, titled with the explained class.
* :func:`cam_maps_figure` — a batch of CAM maps alone as heatmaps, with class and score.
* :func:`overlays` — heatmaps blended over images, as uint8 images.
* :func:`top_channels_figure` — the channels that weigh most in one image's CAM, each over the image.
* :func:`faithfulness_figure` — deletion and insertion curves per CAM method with their AUCs.

Measurements:

* :func:`probe_figure` — linear-probe accuracy by depth, with the chance level.
* :func:`embedding_map_figure` — the last probed embedding in 2-D (PCA, t-SNE), coloured by class.
* :func:`invariance_figure` — accuracy against input shift and rotation, one curve per run.

Output:

* :func:`figure_png` — a figure as PNG bytes (what every ``_repr_png_`` of a result returns).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "curves_figure": "plots",
    "overfitting_onset": "plots",
    "confusion_figure": "plots",
    "top_losses_figure": "evaluation_plots",
    "evaluation_html": "notebook",
    "sample_grid_figure": "grids",
    "augment_grid_figure": "grids",
    "save_sample_grid": "grids",
    "kernel_grid_figure": "filters_plots",
    "response_grid_figure": "filters_plots",
    "receptive_field_figure": "lecture_plots",
    "conv_arithmetic_figure": "lecture_plots",
    "feature_map_figure": "interpret_plots",
    "channel_across_figure": "interpret_plots",
    "filter_vis_figure": "interpret_plots",
    "cam_overlay_figure": "interpret_plots",
    "cam_maps_figure": "notebook",
    "overlays": "interpret_plots",
    "top_channels_figure": "interpret_plots",
    "faithfulness_figure": "interpret_plots",
    "probe_figure": "measure_plots",
    "embedding_map_figure": "measure_plots",
    "invariance_figure": "measure_plots",
    "figure_png": "_png",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    """The module's names and the lazy ones (so that a notebook's tab completion lists them)."""
    return sorted({*globals(), *_EXPORTS})
