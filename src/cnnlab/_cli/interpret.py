"""`cnnlab explain`, `cnnlab features`, `cnnlab dream`: see what a trained or pretrained CNN does.

Each takes a run folder or ``--model NAME`` (the registry, with offline pretrained weights where they
exist), resolved by :func:`cnnlab.source.resolve_model`, writes PNGs and, with ``--json``, prints the
paths and numbers. A model with random weights (a registry model without pretrained weights, a layer
spec) gets a warning, "random weights" in every figure title and ``"weights": "random"`` in the JSON
(else ``"trained"`` or ``"pretrained"``): nothing it shows was learned.
Heavy imports happen inside the commands; ``--method`` is checked against the CAM registry when parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import CnnlabError
from ..train.config import MAX_LR  # the same bound as training: --lr 3.4e37 overflowed Adam's step
from ._app import app, console, print_json

if TYPE_CHECKING:
    from ..source import ModelSource


def _method_name(value: str) -> str:
    """Parse ``--method``: a name from the CAM registry (read lazily: importing it imports torch)."""
    from ..interpret.cam import CAM_METHODS

    if value not in CAM_METHODS:
        raise typer.BadParameter(f"{value!r} is not a CAM method; choose from {', '.join(CAM_METHODS)}")
    return value


def _complete_method(incomplete: str) -> list[str]:
    from ..interpret.cam import CAM_METHODS

    return [m for m in CAM_METHODS if m.startswith(incomplete)]


def filter_ranges(text: str) -> list[range]:
    """``"0-15"``, ``"0,3,7"`` or ``"0-3,8"`` -> ranges of filter indices (one line naming --filters)."""
    ranges: list[range] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, sep, hi = part.partition("-")
            ranges.append(range(int(lo), int(hi) + 1) if sep else range(int(lo), int(lo) + 1))
    except ValueError:
        raise CnnlabError(f"--filters {text!r}: use a range or list such as 0-15 or 0,3,7") from None
    if not any(ranges):
        raise CnnlabError(f"--filters {text!r}: give at least one filter index, e.g. 0-15")
    return ranges


def parse_filters(text: str, channels: int | None = None) -> list[int]:
    """The filter indices of ``--filters``, checked against ``channels`` (the layer's filter count).

    The ranges are checked before any list is made, so ``0-100000000`` costs nothing.
    """
    ranges = filter_ranges(text)
    top = max(r[-1] for r in ranges if r)
    if channels is not None and top >= channels:
        raise CnnlabError(f"--filters {text!r}: the layer has {channels} filters; use 0..{channels - 1}")
    return [i for r in ranges for i in r]


def figure_path(out: Path) -> Path:
    """``--out``: a figure file whose format matplotlib writes (checked before any work)."""
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in formats:
        what = f".{suffix} files" if suffix else "a file without a suffix"
        raise CnnlabError(f"--out {out}: matplotlib cannot write {what}; use .png, .svg, .pdf or .jpg")
    from .._io import ensure_writable_dir

    ensure_writable_dir(out.parent if str(out.parent) else Path("."), option="--out")
    return out


def at_least(value: int, low: int, flag: str) -> int:
    """``value``, or one line naming ``flag`` when it is below ``low``."""
    if value < low:
        raise CnnlabError(f"{flag} {value}: must be at least {low}")
    return value


def load_source(run: str | None, model_name: str | None) -> ModelSource:
    """The model behind ``RUN`` or ``--model NAME`` (exactly one of them); its notices are printed."""
    from ..source import resolve_model

    if (run is None) == (model_name is None):
        raise CnnlabError("give a RUN folder or --model NAME (not both)")
    src = resolve_model(run if run is not None else str(model_name))
    for notice in src.notices:
        console.print(f"note: {notice}")
    if src.weights == "random":
        console.print(
            f"warning: {src.label} has random weights: nothing it shows was learned; give a run folder, or "
            "a model with pretrained weights (`cnnlab models`, column Pretrained)",
            markup=False, highlight=False,
        )
    return src


def mark_random(fig: Any, src: ModelSource) -> Any:
    """``fig`` with "random weights" in its title when ``src`` is a random initialisation."""
    if src.weights != "random":
        return fig
    from ..report.grids import finish_grid
    from ..source import RANDOM_WEIGHTS

    title = " ".join(fig.get_suptitle().split())
    return finish_grid(fig, f"{title} ({RANDOM_WEIGHTS})" if title else RANDOM_WEIGHTS.capitalize())


def split_inputs(inputs: list[str], model_name: str | None) -> tuple[str | None, list[str]]:
    if model_name is not None:
        return None, inputs
    if len(inputs) < 2:
        raise CnnlabError("give RUN IMAGE... (a run folder, then images) or --model NAME IMAGE...")
    return inputs[0], inputs[1:]


def dream_filters(src: ModelSource, layer: str, filters: str, shape: tuple[int, int, int]) -> list[int]:
    """``--filters`` checked against the layer and the memory budget, on a dry (shapes-only) forward pass.

    Each filter gets its own image, optimised in one batch: its memory grows with the count and the
    side, so ``--filters 0-100000000`` or ``--size 100000`` are refused here, before anything is allocated.
    """
    from ..interpret.hooks import resolve_layer
    from ..memory import check_memory, dry_forward

    name, _ = resolve_layer(src.model, layer)
    probe = dry_forward(src.model, shape)
    out = probe.shapes.get(name)
    if out is None:
        size = "x".join(map(str, shape))
        why = probe.failed[-1] if probe.failed else "it never ran"
        raise CnnlabError(f"--size: a {size} input does not reach layer {name} ({why}); use a larger --size")
    if len(out) < 1:
        raise CnnlabError(f"--layer {name}: its output has no channels; choose a convolution or its ReLU")
    indices = parse_filters(filters, channels=int(out[0]))
    check_memory(
        3 * len(indices) * probe.activation_bytes,  # forward, backward and the image parameters, per filter
        f"dreaming {len(indices)} filter(s) at {'x'.join(map(str, shape))}",
        "give fewer --filters or a smaller --size",
    )
    return indices


def _target(text: str | None, classes: list[str]) -> int | None:
    if text is None:
        return None
    if text in classes:
        return classes.index(text)
    try:
        return int(text)
    except ValueError:
        shown = ", ".join(classes[:10]) + (", …" if len(classes) > 10 else "")
        raise CnnlabError(f"--target {text!r}: not a class index or name; classes: {shown}") from None


def _image_paths(items: list[str]) -> list[Path]:
    if not items:
        raise CnnlabError("IMAGE: give at least one image file or folder")
    from ..train.evaluate import image_files

    return image_files(items)


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
    out: Path = typer.Option(Path("explain.png"), "--out", help="Figure file; overlays go beside it."),
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
    from .._io import save_figure
    from ..images import save_image
    from ..interpret.cam import explain as run_explain
    from ..interpret.cam import top_channels
    from ..interpret.metrics import deletion_insertion, target_probability
    from ..interpret.series_cam import explain_series, is_series_source
    from ..report import interpret_plots as plots
    from ..report.series_plots import series_cam_figure

    at_least(channels, 0, "--channels")
    figure_path(out)
    run, images = split_inputs(inputs, model)
    src = load_source(run, model)
    if is_series_source(src):  # a 1-D convnet: maps along time over series (cnnlab.interpret.series_cam)
        cams = explain_series(src, images, method=method, layer=layer, target=_target(target, src.classes))
        save_figure(out, series_cam_figure(cams))
        if as_json:
            print_json({"source": src.label, "weights": src.weights, "method": cams.method,
                        "layer": cams.layer, "figure": str(out), "series": cams.records()})
        else:
            console.print(f"{cams.method} on layer {cams.layer} over {len(cams.names)} series: figure {out}")
        return
    paths = _image_paths(images)
    raw, x = src.preprocess(paths)
    res = run_explain(src.model, x, target=_target(target, src.classes), layer=layer, method=method)
    probs = target_probability(res.logits, res.targets)
    save_figure(out, mark_random(plots.cam_overlay_figure(raw, res, class_names=src.classes,
                                                          probabilities=probs), src))
    over = plots.overlays(raw, res.maps)
    records: list[dict[str, Any]] = []
    top = top_channels(res, k=channels) if channels > 0 else None
    curves = deletion_insertion(src.model, x, res.maps, target=res.targets) if faithfulness else None
    for i, p in enumerate(paths):
        overlay_path = out.with_name(f"{out.stem}-{i:02d}-{p.stem}.png")
        save_image(overlay_path, over[i])
        peak = int(res.maps[i].flatten().argmax())
        t = int(res.targets[i])
        rec: dict[str, Any] = {
            "image": str(p), "overlay": str(overlay_path), "target": t,
            "class": src.classes[t] if t < len(src.classes) else str(t),
            "probability": round(float(probs[i]), 6), "peak_yx": [peak // x.shape[-1], peak % x.shape[-1]],
        }
        if top is not None:
            ch_path = out.with_name(f"{out.stem}-{i:02d}-{p.stem}-channels.png")
            fig = plots.top_channels_figure(raw[i], res, top, i, class_names=src.classes)
            save_figure(ch_path, mark_random(fig, src))
            pairs = zip(top.indices[i].tolist(), top.weights[i].tolist(), strict=True)
            rec["top_channels"] = [{"channel": c, "weight": w} for c, w in pairs]
            rec["channels_figure"] = str(ch_path)
        if curves is not None:
            rec["deletion_auc"] = round(float(curves.deletion_auc[i]), 6)
            rec["insertion_auc"] = round(float(curves.insertion_auc[i]), 6)
        records.append(rec)
    summary: dict[str, Any] = {
        "source": src.label, "weights": src.weights, "method": res.method, "layer": res.layer,
        "figure": str(out), "images": records,
    }
    if curves is not None:
        curve_path = out.with_name(f"{out.stem}-faithfulness.png")
        save_figure(curve_path, mark_random(plots.faithfulness_figure({res.method: curves}), src))
        summary["faithfulness_figure"] = str(curve_path)
    if as_json:
        print_json(summary)
    else:
        for rec in records:
            console.print(f"{rec['image']}: {rec['class']} ({rec['probability']:.1%}) -> {rec['overlay']}")
        console.print(f"{res.method} on layer {res.layer}: figure {out}")


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
    out: Path = typer.Option(Path("features.png"), "--out", help="Figure file."),
    as_json: bool = typer.Option(False, "--json", help="Print paths and numbers as JSON."),
) -> None:
    """Feature maps: every channel of a layer for one image, or one channel across images (--channel).

    --json prints {source, weights, image, layer, shape, figure, dead_channels, channel_mean, channel_max},
    or with --channel {source, weights, images, layer, channel, figure, dead, active_fraction, image_max}.
    A channel is dead when it is <= 0 everywhere for the input(s) (nothing passes a following ReLU).
    """
    from .._io import save_figure
    from ..interpret.feature_maps import channel_across_images, dead_filters, feature_maps
    from ..report import interpret_plots as plots

    at_least(max_channels, 1, "--max-channels")
    figure_path(out)
    run, images = split_inputs(inputs, model)
    src = load_source(run, model)
    paths = _image_paths(images)
    if channel is None and len(paths) != 1:
        raise CnnlabError(f"IMAGE: the channel grid takes one image, got {len(paths)}; or add --channel K")
    raw, x = src.preprocess(paths)
    if channel is not None:
        maps = channel_across_images(src.model, x, layer, channel)
        flags = dead_filters(src.model, x, layer)
        fig = plots.channel_across_figure(raw, maps, channel=channel, layer=flags.layer)
        save_figure(out, mark_random(fig, src))
        summary = {
            "source": src.label, "weights": src.weights, "images": [str(p) for p in paths],
            "layer": flags.layer, "channel": channel,
            "figure": str(out), "dead": bool(flags.dead[channel]),
            "active_fraction": round(float(flags.active_fraction[channel]), 6),
            "image_max": [round(float(v), 6) for v in maps.flatten(1).amax(1)],
        }
        message = f"{flags.layer} channel {channel} across {len(paths)} images -> {out}"
    else:
        fm = feature_maps(src.model, x[0], layer)
        fig = plots.feature_map_figure(fm, max_channels=max_channels, scale=scale)  # type: ignore[arg-type]
        save_figure(out, mark_random(fig, src))
        dead = [int(i) for i in fm.dead.nonzero().flatten()]
        summary = {
            "source": src.label, "weights": src.weights, "image": str(paths[0]), "layer": fm.layer,
            "shape": list(fm.maps.shape),
            "figure": str(out), "dead_channels": dead,
            "channel_mean": [round(float(v), 6) for v in fm.maps.mean((1, 2))],
            "channel_max": [round(float(v), 6) for v in fm.maps.amax((1, 2))],
        }
        message = (f"{fm.layer}: {fm.maps.shape[0]} channels of {tuple(fm.maps.shape[1:])}, "
                   f"{len(dead)} dead for this image -> {out}")
    if as_json:
        print_json(summary)
    else:
        console.print(message)


@app.command()
def dream(
    inputs: list[str] = typer.Argument(None, metavar="[RUN]", help="A run folder (or use --model)."),
    model: str | None = typer.Option(None, "--model", help="A registry model (pretrained when offline)."),
    layer: str = typer.Option(..., "--layer", help="Dotted name, Type:index (Conv2d:-1) or auto."),
    filters: str = typer.Option("0-15", "--filters", help="Filter indices: 0-15, 0,3,7 or 0-3,8."),
    steps: int = typer.Option(128, "--steps", help="Gradient-ascent steps."),
    lr: float = typer.Option(0.05, "--lr", help="Adam learning rate."),
    size: int | None = typer.Option(None, "--size", help="Image side (default: the model's input size)."),
    param: str = typer.Option("fft", "--param", help="fft (decorrelated Fourier) or pixel."),
    transforms: bool = typer.Option(True, "--transforms/--no-transforms", help="Random jitter/scale/rotate."),
    seed: int = typer.Option(0, "--seed", help="Seed of the start images and transforms."),
    out: Path = typer.Option(Path("dream.png"), "--out", help="Figure file."),
    as_json: bool = typer.Option(False, "--json", help="Print paths and numbers as JSON."),
) -> None:
    """Filter visualisation: the input each filter of a layer responds to most (gradient ascent).

    --json prints {source, weights, layer, figure, steps, filters: [{filter, start, end}]}: the filter's
    mean activation on the random start image and on the final image. weights is trained, pretrained or
    random (then the figure title says so too).
    """
    import math

    from rich.progress import Progress

    from .._io import save_figure
    from ..interpret.filter_vis import visualize_filters
    from ..report import interpret_plots as plots

    if param not in ("fft", "pixel"):
        raise CnnlabError(f"--param {param!r}: use fft or pixel")
    if not (math.isfinite(lr) and 0 < lr <= MAX_LR):
        raise CnnlabError(f"--lr {lr}: must be a positive number up to {MAX_LR:g}, e.g. 0.05")
    at_least(steps, 1, "--steps")
    if size is not None:
        at_least(size, 8, "--size")
    filter_ranges(filters)  # the syntax, before the model loads
    figure_path(out)
    items = list(inputs or [])
    if len(items) > 1:
        raise CnnlabError("dream takes one RUN folder (or --model NAME), no images")
    src = load_source(items[0] if items else None, model)
    c, h, w = src.image_size
    shape = (c, size, size) if size else (c, h, w)
    indices = dream_filters(src, layer, filters, shape)
    with Progress(console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task(f"dream {layer}", total=steps)
        res = visualize_filters(
            src.model, layer, filters=indices, image_size=shape, mean=src.preprocess.mean,
            std=src.preprocess.std,
            steps=steps, lr=lr, param=param, transforms=transforms, seed=seed,  # type: ignore[arg-type]
            callback=lambda step, _v: progress.update(task, completed=step + 1),
        )
    save_figure(out, mark_random(plots.filter_vis_figure(res), src))
    if as_json:
        print_json({
            "source": src.label, "weights": src.weights, "layer": res.layer, "figure": str(out),
            "steps": steps,
            "filters": [{"filter": f, "start": round(float(s), 6), "end": round(float(e), 6)}
                        for f, s, e in zip(res.filters, res.start, res.end, strict=True)],
        })
    else:
        gain = float((res.end - res.start).mean())
        console.print(f"{res.layer}: {len(res.filters)} filters, mean activation +{gain:.3f} -> {out}")
