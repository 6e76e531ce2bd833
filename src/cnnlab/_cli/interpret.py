"""`cnnlab explain`, `cnnlab features`, `cnnlab dream`: see what a trained or pretrained CNN does.

Each takes a run folder or ``--model NAME`` (:func:`cnnlab.source.resolve_run_or_model`), and runs one
function of :mod:`cnnlab.report.explanations`, which writes the figures and returns the ``--json`` record.
``--method`` is checked against the CAM registry when parsed (lazily: importing it imports torch).
"""

from __future__ import annotations

from pathlib import Path

import typer

from .._io import default_output
from ..errors import CnnlabError
from ._app import app, console, load_source, print_json


def _method_name(value: str) -> str:
    """Parse ``--method``: a name from the CAM registry (read lazily: importing it imports torch)."""
    from ..interpret.cam import CAM_METHODS

    if value not in CAM_METHODS:
        raise typer.BadParameter(f"{value!r} is not a CAM method; choose from {', '.join(CAM_METHODS)}")
    return value


def _complete_method(incomplete: str) -> list[str]:
    from ..interpret.cam import CAM_METHODS

    return [m for m in CAM_METHODS if m.startswith(incomplete)]


@app.command()
def explain(
    inputs: list[str] = typer.Argument(..., metavar="RUN|IMAGE... IMAGE...",
                                       help="A run folder then images, or images with --model."),
    model: str | None = typer.Option(None, "--model", help="A registry model (pretrained when offline)."),
    method: str = typer.Option("gradcam", "--method", callback=_method_name, autocompletion=_complete_method,
                               help="CAM method from the registry (gradcam, gradcam++, cam, ...)."),
    layer: str = typer.Option("auto", "--layer", help="auto, a dotted name, or Type:index (Conv2d:-1)."),
    target: str | None = typer.Option(None, "--target", help="Class index or name (default: predicted)."),
    channels: int = typer.Option(0, "--channels", help="Also draw the top-K channels view per image."),
    faithfulness: bool = typer.Option(False, "--faithfulness", help="Deletion/insertion curves and AUCs."),
    out: Path | None = typer.Option(None, "--out", show_default=False, help="Figure file; overlays go beside "
                                    "it [default: RUN/explain.png, else $CNNLAB_OUT_DIR (~/cnnlab)]"),
    as_json: bool = typer.Option(False, "--json", help="Print paths and numbers as JSON."),
) -> None:
    """Class activation maps (Grad-CAM and friends) over images, or along time over series.

    Series (a 1-D convnet's run): give ucr:NAME (a few validation series per class), ucr:NAME:INDEX, or a
    .npy/.csv file of one series; one figure shows each series with its map as colour under the curve.

    Writes --out (one row per image: image and overlay) and, beside it, one overlay PNG per image
    (plus a top-channels figure with --channels, a curves figure with --faithfulness). --json prints
    {source, weights, method, layer, figure, images: [{image, overlay, target, class, probability, peak_yx,
    [top_channels: [{channel, weight}], channels_figure], [deletion_auc, insertion_auc]}],
    [faithfulness_figure]}.
    """
    from ..options import at_least, figure_file, run_and_images
    from ..report.explanations import explain_inputs

    at_least(channels, 0, "channels")
    run, images = run_and_images(inputs, model, files_first=True)
    out = figure_file(out or default_output("explain.png", run, label=model), "explain")
    doc = explain_inputs(load_source(run, model), images, out=out, method=method, layer=layer, target=target,
                         channels=channels, faithfulness=faithfulness)
    if as_json:
        print_json(doc)
        return
    for rec in doc.get("images", []):  # a series' figure holds its maps
        console.print(f"{rec['image']}: {rec['class']} ({rec['probability']:.1%}) -> {rec['overlay']}")
    console.print(f"{doc['method']} on layer {doc['layer']}: figure {out}")


@app.command()
def features(
    inputs: list[str] = typer.Argument(..., metavar="RUN|IMAGE IMAGE...",
                                       help="A run folder then image(s), or image(s) with --model."),
    model: str | None = typer.Option(None, "--model", help="A registry model (pretrained when offline)."),
    layer: str = typer.Option(
        "auto", "--layer", help="auto (the first post-activation map), a dotted name or Type:index."
    ),
    channel: int | None = typer.Option(None, "--channel",
                                       help="Show this one channel across all the images instead."),
    max_channels: int = typer.Option(64, "--max-channels", help="Channels drawn in the grid."),
    scale: str = typer.Option("channel", "--scale",
                              help="channel (each tile its own range) or layer (one range: tiles compare)."),
    out: Path | None = typer.Option(None, "--out", show_default=False, help="Figure file [default: "
                                    "RUN/features.png, else $CNNLAB_OUT_DIR (~/cnnlab)]"),
    as_json: bool = typer.Option(False, "--json", help="Print paths and numbers as JSON."),
) -> None:
    """Feature maps: every channel of a layer for one image, or one channel across images (--channel).

    --json prints {source, weights, image, layer, shape, figure, dead_channels, channel_mean, channel_max},
    or with --channel {source, weights, images, layer, channel, figure, dead, active_fraction, image_max}.
    A channel is dead when it is <= 0 everywhere for the input(s) (nothing passes a following ReLU).
    """
    from ..options import at_least, figure_file, image_paths, run_and_images
    from ..report.explanations import feature_map_files

    at_least(max_channels, 1, "max_channels")
    run, images = run_and_images(inputs, model, files_first=True)
    out = figure_file(out or default_output("features.png", run, label=model), "features")
    src = load_source(run, model)
    doc, message = feature_map_files(src, image_paths(images), out=out, layer=layer, channel=channel,
                                     max_channels=max_channels, scale=scale)
    if as_json:
        print_json(doc)
    else:
        console.print(message)


@app.command()
def dream(
    inputs: list[str] = typer.Argument(None, metavar="[RUN]", help="A run folder (or use --model)."),
    model: str | None = typer.Option(None, "--model", help="A registry model (pretrained when offline)."),
    layer: str = typer.Option("auto", "--layer",
                              help="Dotted name, Type:index (Conv2d:-1) or auto (a middle stage)."),
    filters: str = typer.Option("0-15", "--filters", help="Filter indices: 0-15, 0,3,7 or 0-3,8."),
    steps: int = typer.Option(128, "--steps", help="Gradient-ascent steps."),
    lr: float = typer.Option(0.05, "--lr", help="Adam learning rate."),
    size: int | None = typer.Option(None, "--size", help="Image side (default: the model's input size)."),
    param: str = typer.Option("fft", "--param", help="fft (decorrelated Fourier) or pixel."),
    transforms: bool = typer.Option(True, "--transforms/--no-transforms", help="Random jitter/scale/rotate."),
    seed: int = typer.Option(0, "--seed", help="Seed of the start images and transforms."),
    out: Path | None = typer.Option(None, "--out", show_default=False, help="Figure file [default: "
                                    "RUN/dream.png, else $CNNLAB_OUT_DIR (~/cnnlab)]"),
    as_json: bool = typer.Option(False, "--json", help="Print paths and numbers as JSON."),
) -> None:
    """Filter visualisation: the input each filter of a layer responds to most (gradient ascent).

    --json prints {source, weights, layer, objective, figure, steps, filters: [{filter, start, end, rose}]}:
    the filter's mean activation at the layer on the random start image and on the final image, and
    whether it rose (end > start and > 0; the figure flags those that did not). objective is what the
    ascent maximised: the layer, or the input of its last ReLU-family activation (a dead map has no
    gradient). weights is trained, pretrained or random (then the figure title says so too).
    """
    from rich.progress import Progress

    from ..options import figure_file, filter_ranges
    from ..report.explanations import check_dream, dream_files

    check_dream(steps=steps, lr=lr, size=size, param=param)
    filter_ranges(filters)  # the syntax, before the model loads
    items = list(inputs or [])
    out = figure_file(out or default_output("dream.png", items[0] if items else None, label=model), "dream")
    if len(items) > 1:
        raise CnnlabError("dream takes one RUN folder (or --model NAME), no images")
    src = load_source(items[0] if items else None, model)
    with Progress(console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task(f"dream {layer}", total=steps)
        doc = dream_files(src, layer=layer, out=out, filters=filters, steps=steps, lr=lr, size=size,
                          param=param, transforms=transforms, seed=seed,
                          callback=lambda step, _v: progress.update(task, completed=step + 1))
    if as_json:
        print_json(doc)
    else:
        gain = sum(f["end"] - f["start"] for f in doc["filters"]) / len(doc["filters"])
        console.print(f"{doc['layer']}: {len(doc['filters'])} filters, mean activation +{gain:.3f} -> {out}")
