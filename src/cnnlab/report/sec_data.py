"""Section 2 of a run's report: the classes and their counts, sample images, augmentation, skipped files."""

from __future__ import annotations

from .context import RunContext, blocks_of
from .document import Block, Facts, Section, Table, Text, figure_picture, rows_of, shown_of

#: Images in the sample grid (balanced over classes) and rows of the augmentation grid.
SAMPLE_IMAGES = 32
AUGMENT_ROWS = 6


def _counts(ctx: RunContext) -> list[Block]:
    b = ctx.bundle
    train, val = b.train.class_counts(), b.val.class_counts()
    rows = [(name, a, v) for name, a, v in zip(b.classes, train, val, strict=True)]
    rows.append(("total", sum(train), sum(val)))
    shape = "x".join(map(str, b.image_shape))
    what = "series" if b.is_series else "images"
    axes = "C x L: channels x samples" if b.is_series else "C x H x W"
    facts = Facts(
        (
            ("data", b.spec),
            ("classes", str(len(b.classes))),
            (what, f"{sum(train):,} training, {sum(val):,} validation"),
            (f"{what[:-1] if what == 'images' else what} shape", f"{shape} ({axes}, as the model sees them)"),
        )
    )
    return [
        facts,
        Table(
            ("class", "train", "val"),
            rows_of(rows),
            caption="images per class and split",
            scroll=len(rows) > 40,
        ),
    ]


def _samples(ctx: RunContext) -> list[Block]:
    from .grids import sample_grid_figure

    ctx.require_images("sample grid")
    train = ctx.bundle.train
    n = min(SAMPLE_IMAGES, len(train))
    what = shown_of(n, len(train), "training images")
    fig = sample_grid_figure(train, n=n, title=f"{ctx.data_spec}: training samples ({what})")
    return [
        figure_picture(
            fig,
            f"a grid of {n} training images, titled with their class",
            caption=f"{what}, taken round-robin over the classes (the first of each)",
            photo=ctx.bundle.image_shape[0] == 3,  # colour photos: JPEG
        )
    ]


def _augment(ctx: RunContext) -> list[Block]:
    from .grids import augment_grid_figure

    ctx.require_images("augmentation grid")
    preset = ctx.config.augment
    if preset == "none":
        return [
            Text("The run trained without augmentation (augment: none), so there is no augmentation grid.")
        ]
    train = ctx.bundle.train
    n = min(AUGMENT_ROWS, len(train))
    fig = augment_grid_figure(train, preset, n=n, seed=ctx.config.seed, title=f"augment={preset}")
    return [
        figure_picture(
            fig,
            f"{n} training images, each followed by six augmented versions",
            caption=f"{n} training images and six random draws of the {preset!r} preset each",
            photo=ctx.bundle.image_shape[0] == 3,
        )
    ]


def _skipped(ctx: RunContext) -> list[Block]:
    skipped = ctx.bundle.skipped
    if not skipped:
        return [Text("Skipped files: none (every file found was decoded).")]
    rows = rows_of((s.path, s.reason) for s in skipped)
    return [
        Table(
            ("skipped file", "reason"),
            rows,
            caption=f"all {len(rows):,} skipped files",
            scroll=len(rows) > 20,
        )
    ]


def data_section(ctx: RunContext) -> Section:
    """Classes with counts per split, a sample grid, the augmentation grid and the skipped files."""
    return Section(
        "data",
        "Data",
        blocks_of(lambda: _counts(ctx), lambda: _samples(ctx), lambda: _augment(ctx), lambda: _skipped(ctx)),
    )
