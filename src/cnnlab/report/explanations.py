"""What a model does to images, written as figures and returned as records: CAMs, feature maps, dreams.

:func:`explain_images`, :func:`feature_map_files` and :func:`dream_files` each run the library on a
:class:`~cnnlab.source.ModelSource`, save their figures (``--out`` and files beside it) and return the
record that ``cnnlab explain|features|dream --json`` prints, with the same keys for a notebook. A model
with random weights gets "random weights" in every figure title and ``"weights": "random"`` in the record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, CnnlabError
from ..options import at_least, image_paths, parse_filters

if TYPE_CHECKING:
    from ..source import ModelSource

__all__ = ["check_dream", "dream_files", "dream_filters", "explain_images", "feature_map_files",
           "mark_random"]


def mark_random(fig: Any, src: ModelSource) -> Any:
    """``fig`` with "random weights" in its title when ``src`` is a random initialisation."""
    if src.weights != "random":
        return fig
    from ..source import RANDOM_WEIGHTS
    from .grids import finish_grid

    title = " ".join(fig.get_suptitle().split())
    return finish_grid(fig, f"{title} ({RANDOM_WEIGHTS})" if title else RANDOM_WEIGHTS.capitalize())


def explain_series_files(src: ModelSource, items: Sequence[str], *, out: str | Path, method: str = "gradcam",
                         layer: str = "auto", target: str | None = None) -> dict[str, Any]:
    """Class activation maps along time of series (a 1-D convnet): the figure ``out``.

    Args:
        src: A series model (a run of ``fcn1d``, ``resnet1d``, a 1-D spec ...).
        items: ``ucr:NAME`` (a few validation series per class), ``ucr:NAME:INDEX`` or files of one series
            (:func:`cnnlab.interpret.series_cam.read_series_inputs`).
        out: The figure: each series with its map as colour under the curve.
        method: A CAM method of the registry but ``scorecam``.
        layer: ``auto`` or a dotted name.
        target: A class name or index; None: the predicted class.

    Returns:
        ``{source, weights, method, layer, figure, series: [{series, label, target, class, predicted,
        probability, peak_sample}]}``.
    """
    from .._io import save_figure  # looked up at each call, so a wrapper installed later is used
    from ..interpret.series_cam import explain_series
    from ..interpret.targets import parse_target
    from .series_plots import series_cam_figure

    chosen = parse_target(target, src.classes)
    cams = explain_series(src, list(items), method=method, layer=layer, target=chosen)
    save_figure(Path(out), series_cam_figure(cams))
    return {"source": src.label, "weights": src.weights, "method": cams.method, "layer": cams.layer,
            "figure": str(out), "series": cams.records()}


def explain_inputs(src: ModelSource, items: Sequence[str], *, out: str | Path, method: str = "gradcam",
                   layer: str = "auto", target: str | None = None, channels: int = 0,
                   faithfulness: bool = False) -> dict[str, Any]:
    """Class activation maps of what a command line names: images, or series for a 1-D convnet.

    Args:
        src: The model.
        items: Image files; for a 1-D convnet ``ucr:NAME[:INDEX]`` or files of one series.
        out: The figure; see :func:`explain_images` and :func:`explain_series_files`.
        method: A CAM method of the registry.
        layer: ``auto``, a dotted name or ``Type:index``.
        target: A class name or index; None: predicted.
        channels: Images only: also draw the top-K channels of each image (0: no).
        faithfulness: Images only: also measure deletion/insertion curves.

    Returns:
        The ``--json`` record of :func:`explain_images` or :func:`explain_series_files`.
    """
    from ..interpret.series_cam import is_series_source

    if is_series_source(src):  # maps along time over series (cnnlab.interpret.series_cam)
        return explain_series_files(src, items, out=out, method=method, layer=layer, target=target)
    return explain_images(src, image_paths(items), out=out, method=method, layer=layer, target=target,
                          channels=channels, faithfulness=faithfulness)


def explain_images(src: ModelSource, paths: Sequence[str | Path], *, out: str | Path, method: str = "gradcam",
                   layer: str = "auto", target: str | None = None, channels: int = 0,
                   faithfulness: bool = False) -> dict[str, Any]:
    """Class activation maps of images: the figure ``out`` and one overlay PNG per image beside it.

    Args:
        src: The model.
        paths: Image files.
        out: The figure (one row per image); overlays, the top-channels and curves figures go beside it.
        method: A CAM method of the registry (``gradcam``, ``gradcam++``, ``cam`` ...).
        layer: ``auto``, a dotted name or ``Type:index``.
        target: A class name or index (:func:`~cnnlab.interpret.targets.parse_target`); None: predicted.
        channels: Also draw the top-K channels of each image (0: no).
        faithfulness: Also compute deletion/insertion curves and their AUCs.

    Returns:
        ``{source, weights, method, layer, figure, images: [{image, overlay, target, class, probability,
        peak_yx, [top_channels: [{channel, weight}], channels_figure], [deletion_auc, insertion_auc]}],
        [faithfulness_figure]}``.
    """
    from .._io import save_figure  # looked up at each call, so a wrapper installed later is used
    from ..images import save_image
    from ..interpret.cam import explain, top_channels
    from ..interpret.metrics import deletion_insertion, target_probability
    from ..interpret.targets import parse_target
    from . import interpret_plots as plots

    at_least(channels, 0, "channels")
    files, out = [Path(p) for p in paths], Path(out)
    raw, x = src.preprocess(files)
    res = explain(src.model, x, target=parse_target(target, src.classes), layer=layer, method=method)
    probs = target_probability(res.logits, res.targets)
    save_figure(out, mark_random(plots.cam_overlay_figure(raw, res, class_names=src.classes,
                                                          probabilities=probs), src))
    over = plots.overlays(raw, res.maps)
    top = top_channels(res, k=channels) if channels > 0 else None
    curves = deletion_insertion(src.model, x, res.maps, target=res.targets) if faithfulness else None
    records: list[dict[str, Any]] = []
    for i, p in enumerate(files):
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
    return summary


def feature_map_files(src: ModelSource, paths: Sequence[str | Path], *, out: str | Path, layer: str = "auto",
                      channel: int | None = None, max_channels: int = 64,
                      scale: str = "channel") -> tuple[dict[str, Any], str]:
    """Feature maps: every channel of a layer for one image, or one channel across images (``channel``).

    A channel is dead when it is <= 0 everywhere for the input(s) (nothing passes a following ReLU).

    Returns:
        The record, ``{source, weights, image, layer, shape, figure, dead_channels, channel_mean,
        channel_max}`` or with ``channel`` ``{source, weights, images, layer, channel, figure, dead,
        active_fraction, image_max}``, and one line saying what the figure shows.
    """
    from .._io import save_figure  # looked up at each call, so a wrapper installed later is used
    from ..interpret.feature_maps import channel_across_images, dead_filters, feature_maps
    from ..source import require_images
    from . import interpret_plots as plots

    at_least(max_channels, 1, "max_channels")
    require_images(src.image_size, src.label, "features")
    if channel is None and len(paths) != 1:
        raise CnnlabError(f"IMAGE: the channel grid takes one image, got {len(paths)}; or add `channel` K")
    files, out = [Path(p) for p in paths], Path(out)
    raw, x = src.preprocess(files)
    head = {"source": src.label, "weights": src.weights}
    if channel is not None:
        maps = channel_across_images(src.model, x, layer, channel)
        flags = dead_filters(src.model, x, layer)
        fig = plots.channel_across_figure(raw, maps, channel=channel, layer=flags.layer)
        save_figure(out, mark_random(fig, src))
        return {
            **head, "images": [str(p) for p in files], "layer": flags.layer, "channel": channel,
            "figure": str(out), "dead": bool(flags.dead[channel]),
            "active_fraction": round(float(flags.active_fraction[channel]), 6),
            "image_max": [round(float(v), 6) for v in maps.flatten(1).amax(1)],
        }, f"{flags.layer} channel {channel} across {len(paths)} images -> {out}"
    fm = feature_maps(src.model, x[0], layer)
    fig = plots.feature_map_figure(fm, max_channels=max_channels, scale=scale)  # type: ignore[arg-type]
    save_figure(out, mark_random(fig, src))
    dead = [int(i) for i in fm.dead.nonzero().flatten()]
    return {
        **head, "image": str(files[0]), "layer": fm.layer, "shape": list(fm.maps.shape),
        "figure": str(out), "dead_channels": dead,
        "channel_mean": [round(float(v), 6) for v in fm.maps.mean((1, 2))],
        "channel_max": [round(float(v), 6) for v in fm.maps.amax((1, 2))],
    }, (f"{fm.layer}: {fm.maps.shape[0]} channels of {tuple(fm.maps.shape[1:])}, "
        f"{len(dead)} dead for this image -> {out}")


def check_dream(*, steps: int, lr: float, size: int | None, param: str) -> None:
    """The options of a filter visualisation, checked before the model loads."""
    from ..train.config import MAX_LR  # the same bound as training: lr 3.4e37 overflowed Adam's step

    if param not in ("fft", "pixel"):
        raise ArgumentError(f"{param!r}: use fft or pixel", param="param")
    if not (math.isfinite(lr) and 0 < lr <= MAX_LR):
        raise ArgumentError(f"{lr}: must be a positive number up to {MAX_LR:g}, e.g. 0.05", param="lr")
    at_least(steps, 1, "steps")
    if size is not None:
        at_least(size, 8, "size")


def dream_filters(src: ModelSource, layer: str, filters: str, shape: tuple[int, int, int]) -> list[int]:
    """``filters`` checked against the layer and the memory budget, on a dry (shapes-only) forward pass.

    Each filter gets its own image, optimised in one batch: its memory grows with the count and the
    side, so ``0-100000000`` filters or a side of 100000 are refused here, before anything is allocated.
    """
    from ..interpret.hooks import resolve_layer
    from ..memory import check_memory, dry_forward

    name, _ = resolve_layer(src.model, layer)
    probe = dry_forward(src.model, shape)
    out = probe.shapes.get(name)
    if out is None:
        size = "x".join(map(str, shape))
        why = probe.failed[-1] if probe.failed else "it never ran"
        raise ArgumentError(f": a {size} input does not reach layer {name} ({why}); use a larger `size`",
                            param="size")
    if len(out) < 1:
        raise ArgumentError(f"{name}: its output has no channels; choose a convolution or its ReLU",
                            param="layer")
    indices = parse_filters(filters, channels=int(out[0]))
    check_memory(
        3 * len(indices) * probe.activation_bytes,  # forward, backward and the image parameters, per filter
        f"dreaming {len(indices)} filter(s) at {'x'.join(map(str, shape))}",
        "give fewer `filters` or a smaller `size`",
    )
    return indices


def dream_files(src: ModelSource, *, layer: str = "auto", out: Path, filters: str = "0-15", steps: int = 128,
                lr: float = 0.05, size: int | None = None, param: str = "fft", transforms: bool = True,
                seed: int = 0, callback: Callable[[int, Any], None] | None = None) -> dict[str, Any]:
    """Filter visualisation: the input each filter of ``layer`` responds to most (gradient ascent).

    Returns:
        ``{source, weights, layer, objective, figure, steps, filters: [{filter, start, end, rose}]}``: each
        filter's mean activation on the random start image and on the final image, whether it rose, and
        what the ascent maximised (``layer="auto"``: a middle stage, see
        :func:`~cnnlab.interpret.filter_vis.dream_layer`).
    """
    from .._io import save_figure  # looked up at each call, so a wrapper installed later is used
    from ..interpret.filter_vis import dream_layer, visualize_filters
    from ..source import require_images
    from . import interpret_plots as plots

    check_dream(steps=steps, lr=lr, size=size, param=param)
    require_images(src.image_size, src.label, "dream")
    c, h, w = src.image_size
    shape = (c, size, size) if size else (c, h, w)
    layer = dream_layer(src.model, layer)
    indices = dream_filters(src, layer, filters, shape)
    res = visualize_filters(
        src.model, layer, filters=indices, image_size=shape, mean=src.preprocess.mean, std=src.preprocess.std,
        steps=steps, lr=lr, param=param, transforms=transforms, seed=seed, callback=callback,  # type: ignore[arg-type]
    )
    save_figure(out, mark_random(plots.filter_vis_figure(res), src))
    return {
        "source": src.label, "weights": src.weights, "layer": res.layer, "objective": res.objective,
        "figure": str(out), "steps": steps,
        "filters": [{"filter": f, "start": round(float(s), 6), "end": round(float(e), 6), "rose": r}
                    for f, s, e, r in zip(res.filters, res.start, res.end, res.rose, strict=True)],
    }
