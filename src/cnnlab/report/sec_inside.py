"""Section 6 of a run's report: inside the network.

The first layer's kernels, the feature maps of one validation image at several depths (dead channels
marked), what a few filters of two layers respond to most (gradient ascent), and Grad-CAM for a few
validation images of every class.
"""

from __future__ import annotations

from .context import RunContext, blocks_of, iter_once
from .document import Block, Gallery, Section, Text, figure_picture, image_picture, shown_of
from .tiles import METHOD, explain_images, image_name, tile

#: Feature maps are shown at this many depths (first, middle and last post-activation map).
DEPTHS = 3
#: Channels drawn per feature-map figure (the title says when there are more), dead channels listed by index.
MAX_CHANNELS = 32
LISTED_DEAD = 64
#: Filters visualised per layer, the gradient-ascent steps, and the largest side of the optimised images
#: (the forward pass stops at the layer, so a smaller image than the model's works; 112 px makes a 224-px
#: network's visualisations 4x cheaper, Lucent's default is 128).
FILTERS = 8
DREAM_STEPS = 64
DREAM_SIDE = 112
#: Validation images per class in the Grad-CAM gallery (fewer when there are many classes).
CAM_PER_CLASS = 2
CAM_MAX_IMAGES = 64


def spread(items: list[str], k: int) -> list[str]:
    """``k`` items spread evenly from the first to the last (all of them when there are fewer)."""
    if len(items) <= k:
        return list(items)
    if k < 2:
        return items[:k]
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def dream_layers(convs: list[str]) -> list[str]:
    """The two convolutions whose filters are visualised: at a third and two thirds of the depth.

    The first layer's kernels are shown as they are; the last layers cost a whole forward pass per step.
    """
    n = len(convs)
    if n <= 2:
        return list(convs)
    return [convs[i] for i in sorted({min(n - 1, round(n * f)) for f in (1 / 3, 2 / 3)})]


def activation_layers(ctx: RunContext) -> list[str]:
    """Post-activation spatial maps in forward order (from the summary), else the convolutions."""
    from ..interpret.feature_maps import ACTIVATIONS

    kinds = {a.__name__ for a in ACTIVATIONS}
    spatial = [r for r in ctx.summary.layers if r.is_leaf and len(r.output_shape) == 3 and r.name]
    acts = iter_once(iter(r.name for r in spatial if r.type in kinds))
    return acts or iter_once(iter(r.name for r in spatial if r.type == "Conv2d"))


def conv_layers(ctx: RunContext) -> list[str]:
    """The ``Conv2d`` layers in forward order."""
    return iter_once(iter(r.name for r in ctx.summary.layers if r.type == "Conv2d" and r.name))


def _kernels(ctx: RunContext) -> list[Block]:
    from ..filters import FilterBank
    from ..models.surgery import first_conv
    from .filters_plots import kernel_grid_figure

    ctx.require_images("first-layer kernels")
    found = first_conv(ctx.loaded.model)
    if found is None:
        return [Text("The model has no convolution, so there are no first-layer kernels to show.")]
    name, conv = found
    weight = conv.weight.detach().float().cpu()
    n = weight.shape[0]
    bank = FilterBank(name, weight, [str(i) for i in range(n)], [{} for _ in range(n)], stride=conv.stride[0])
    per = (
        "" if weight.shape[1] == 1 else f"; each kernel is the mean over its {weight.shape[1]} input channels"
    )
    caption = (
        f"the learned kernels of the first layer, {name} ({shown_of(min(n, 64), n, 'kernels')}); "
        f"red positive, blue negative, white 0{per}"
    )
    return [
        figure_picture(
            kernel_grid_figure(bank, cols=8, max_kernels=64), f"the kernels of {name}", caption=caption
        )
    ]


def _feature_maps(ctx: RunContext) -> list[Block]:
    from ..interpret import feature_maps
    from .interpret_plots import feature_map_figure

    ctx.require_images("feature maps")
    layers = activation_layers(ctx)
    if not layers:
        return [Text("The model has no spatial layer, so there are no feature maps to show.")]
    run, val = ctx.loaded, ctx.val
    image, label = val.images[0], int(val.labels[0])
    x = run.preprocess.normalize(image[None])[0]
    short, full = image_name(ctx, 0)
    picked = spread(layers, DEPTHS)
    blocks: list[Block] = [
        image_picture(image, f"validation image {full} ({val.classes[label]})"),
        Text(
            f"The first validation image, {short} ({val.classes[label]}), at "
            f"{shown_of(len(picked), len(layers), 'post-activation layers')}: {', '.join(picked)}. "
            "A dead channel (red title) is <= 0 everywhere for this image, so nothing passes it on."
        ),
    ]
    for layer in picked:
        fm = feature_maps(run.model, x, layer)
        dead = [int(i) for i in fm.dead.nonzero().flatten()]
        listed = ", ".join(map(str, dead[:LISTED_DEAD])) if dead else "none"
        if len(dead) > LISTED_DEAD:
            listed = f"{len(dead):,}, the first {LISTED_DEAD}: {listed}, ..."
        k = fm.maps.shape[0]
        shown = shown_of(min(MAX_CHANNELS, k), k, "channels")
        caption = f"{fm.layer}: {shown} drawn, each on its own scale; dead channels of all {k}: {listed}"
        fig = feature_map_figure(fm, max_channels=MAX_CHANNELS, cols=8)
        blocks.append(figure_picture(fig, f"feature maps of {fm.layer}", caption=caption,
                                     photo=fm.maps.shape[-1] >= 32))  # large maps: JPEG
    return blocks


def _filter_vis(ctx: RunContext) -> list[Block]:
    from ..interpret import visualize_filters
    from .interpret_plots import filter_vis_figure

    ctx.require_images("filter visualisations")
    convs = conv_layers(ctx)
    if not convs:
        return [Text("The model has no convolution, so there are no filters to visualise.")]
    layers = dream_layers(convs)
    run = ctx.loaded
    c, h, w = run.image_size
    side = (
        (h, w)
        if max(h, w) <= DREAM_SIDE
        else (round(h * DREAM_SIDE / max(h, w)), round(w * DREAM_SIDE / max(h, w)))
    )
    blocks: list[Block] = [
        Text(
            f"What {FILTERS} filters of {' and '.join(layers)} respond to most: an input optimised by "
            f"{DREAM_STEPS} steps of gradient ascent on each filter's mean activation (decorrelated Fourier "
            f"parametrisation, random jitter, seed 0) at {side[0]}x{side[1]} pixels. The titles show the "
            "mean activation before -> after."
        )
    ]
    for k, layer in enumerate(layers):
        channels = ctx.summary.layer(layer).output_shape[0]
        n = min(FILTERS, channels)
        done = k * DREAM_STEPS

        def step(i: int, _v: object, done: int = done) -> None:
            if ctx.work is not None:
                ctx.work(done + i + 1, DREAM_STEPS * len(layers))

        res = visualize_filters(
            run.model,
            layer,
            filters=list(range(n)),
            image_size=(c, *side),
            mean=run.mean,
            std=run.std,
            steps=DREAM_STEPS,
            seed=0,
            callback=step,
        )
        blocks.append(
            figure_picture(
                filter_vis_figure(res),
                f"filter visualisations of {layer}",
                caption=f"{layer}: filters 0-{n - 1} ({shown_of(n, channels, 'filters')})",
                photo=bool(res.images.shape[1] == 3),  # colour textures: JPEG
            )
        )
    return blocks


def _series_cams(ctx: RunContext) -> list[Block]:
    """Grad-CAM along time for the first validation series of each class (cnnlab.interpret.series_cam)."""
    from ..interpret.series_cam import explain_series
    from .series_plots import series_cam_figure

    per_class = max(1, min(CAM_PER_CLASS, CAM_MAX_IMAGES // max(1, len(ctx.val.classes))))
    cams = explain_series(ctx.source, [ctx.data_spec], method=METHOD, per_class=per_class)
    caption = (f"{per_class} validation series of each class (the first of each): the series with the "
               f"{METHOD} map of the explained class as colour under the curve (layer {cams.layer})")
    return [figure_picture(series_cam_figure(cams), f"{METHOD} along time of validation series",
                           caption=caption)]


def _cam_gallery(ctx: RunContext) -> list[Block]:
    from .grids import pick_per_class

    if ctx.is_series:
        return _series_cams(ctx)
    val, classes = ctx.val, ctx.val.classes
    per_class = max(1, min(CAM_PER_CLASS, CAM_MAX_IMAGES // max(1, len(classes))))
    index = pick_per_class(val.labels, per_class * len(classes), len(classes)).tolist()
    index.sort(key=lambda i: (int(val.labels[i]), i))  # grouped by class
    ex = explain_images(ctx, index)
    tiles = tuple(tile(ctx, ex, k) for k in range(len(index)))
    caption = (
        f"{per_class} validation image(s) of each of the {len(classes)} classes (the first of each), "
        f"{len(index)} in all: the image, then the {METHOD} overlay of the predicted class "
        f"(layer {ex.layer}); a red edge marks a wrong prediction"
    )
    return [Gallery(tiles, caption=caption)]


def inside_section(ctx: RunContext) -> Section:
    """Kernels, feature maps at several depths, filter visualisations of two layers, Grad-CAM per class."""
    return Section(
        "inside",
        "Inside the network",
        blocks_of(
            lambda: _kernels(ctx),
            lambda: _feature_maps(ctx),
            lambda: _filter_vis(ctx),
            lambda: _cam_gallery(ctx),
        ),
    )
