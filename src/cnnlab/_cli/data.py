"""`cnnlab data`: what a dataset holds (class counts, image size, skipped files) and a grid of its images.

Heavy imports (torch, the data layer, matplotlib) happen inside the command, so ``cnnlab --help``
stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ._app import app, console, print_json


def load_with_progress(spec: str, **kwargs: Any) -> Any:
    """``load_data`` with a rich progress bar (on stderr) while image files are decoded."""
    from .._progress import progress_bar
    from ..data import load_data

    with progress_bar(f"decoding {spec}") as progress:  # a bar on a terminal, plain lines in a log
        return load_data(spec, progress=progress, **kwargs)


def print_summary(bundle: Any) -> None:
    """A rich table of class counts per split, then the image shape and skipped files."""
    from rich.table import Table

    train, val = bundle.train.class_counts(), bundle.val.class_counts()
    table = Table(title=f"{len(bundle.classes)} classes")
    console.print(f"data: {bundle.spec}", markup=False, highlight=False)
    table.add_column("class")
    table.add_column("train", justify="right")
    table.add_column("val", justify="right")
    for name, a, b in zip(bundle.classes, train, val, strict=True):
        table.add_row(name, str(a), str(b))
    table.add_row("total", str(sum(train)), str(sum(val)), style="bold")
    console.print(table)
    shape = "series shape: {} (C x L)" if bundle.is_series else "image shape: {} (C x H x W)"
    console.print(shape.format("x".join(map(str, bundle.image_shape))))
    if bundle.skipped:
        console.print(f"[yellow]skipped {len(bundle.skipped)} file(s):[/yellow]")
        for s in bundle.skipped[:20]:
            console.print(f"  {s.path}: {s.reason}", markup=False, highlight=False)
        if len(bundle.skipped) > 20:
            console.print(f"  ... and {len(bundle.skipped) - 20} more (see --json)")
    else:
        console.print("skipped files: none")


@app.command()
def data(
    spec: str = typer.Argument(..., help="sample | mnist | fashion-mnist | FOLDER | CSV of path,label"),
    json_out: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
    out: Path | None = typer.Option(None, "--out", show_default=False, help="folder for the image grids "
                                    "[default: $CNNLAB_OUT_DIR/data-NAME, $CNNLAB_OUT_DIR ~/cnnlab]"),
    augment: str | None = typer.Option(
        None, "--augment", help="also write the images augmented with this preset (e.g. standard)"
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="folder holding fashion-mnist/ or mnist-10k/ (default $CNNLAB_DATA_DIR)"
    ),
    img_size: int | None = typer.Option(None, "--img-size", help="resize to SxS (IDX 28, folders 150)"),
    val_split: float = typer.Option(0.2, "--val-split", help="val fraction when the data has no val split"),
    seed: int = typer.Option(0, "--seed", help="seed of the split and of the augmentation draws"),
    download: bool = typer.Option(False, "--download", help="let torchvision download MNIST/Fashion-MNIST"),
) -> None:
    """Show what a dataset holds and write a grid of its images (and augmented copies)."""
    from ..options import check_data_exists

    check_data_exists(spec, param=None)  # before the slow imports, as fast as `cnnlab --help`
    from .._io import default_output, ensure_writable_dir
    from ..data.transforms import get_preset
    from ..report.grids import save_sample_grid

    if augment is not None:
        get_preset(augment)  # unknown names fail before any loading
    out_dir = ensure_writable_dir(out or default_output("data", label=spec))
    bundle = load_with_progress(spec, data_dir=data_dir, img_size=img_size, val_split=val_split, seed=seed,
                                download=download)
    written = [save_sample_grid(bundle, out_dir / "samples.png", seed=seed)]
    if augment is not None:
        dest = out_dir / f"augment-{augment}.png"
        written.append(save_sample_grid(bundle, dest, augment=augment, seed=seed))
    if json_out:
        print_json(bundle.summary())
        return
    print_summary(bundle)
    for path in written:
        console.print(f"wrote {path}")
