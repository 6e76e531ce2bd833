"""`cnnlab rf`, `cnnlab arithmetic`, `cnnlab probe`, `cnnlab invariance`: the course's ideas as figures.

* ``rf``: the theoretical receptive field of a unit (summary's number) drawn on the input, its effective
  field (input gradient), and field size and jump layer by layer;
* ``arithmetic``: one conv/pool layer's grids and its output-size formula filled in;
* ``probe``: linear-probe accuracy by depth and a 2-D map of the last embedding;
* ``invariance``: accuracy of one or more runs on shifted and rotated images.

Each runs one function of :mod:`cnnlab.report.measures` and prints its record.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, console, print_json


@app.command()
def rf(
    target: str = typer.Argument(..., metavar="MODEL|RUN",
                                 help="a run folder, a name from `cnnlab models`, or a layer spec"),
    image: Path | None = typer.Argument(None, help="an image to draw on (default: a grey canvas)"),
    layer: str = typer.Option("auto", "--layer",
                              help="auto (the last conv map, the CAM layer), a dotted name or Type:index"),
    input_size: str | None = typer.Option(None, "--input", help="input as CxHxW (default: the model's own)"),
    samples: int = typer.Option(16, "--samples", min=1,
                                help="random images the effective field is averaged over (without IMAGE)"),
    seed: int = typer.Option(0, "--seed", help="seed of the random images"),
    out: Path = typer.Option(Path("rf.png"), "--out", help="figure file"),
    as_json: bool = typer.Option(False, "--json", help="print the numbers as JSON"),
) -> None:
    """Receptive field of a layer's centre unit: theoretical (summary's number) and effective, on the input.

    --json prints {source, figure, model, layer, input_size, output_shape, unit, receptive_field, jump,
    box: {top, left, bottom, right}, effective: {inputs, support_box, inside_theoretical},
    layers: [{name, type, what, receptive_field, jump}], learned}.
    """
    from ..options import input_size as parse_size
    from ..report.measures import receptive_field_files

    view, doc, notices = receptive_field_files(target, out=out, image=image, layer=layer,
                                               input_size=parse_size(input_size), samples=samples, seed=seed)
    for notice in notices:
        console.print(f"note: {notice}", markup=False, highlight=False)
    if as_json:
        print_json(doc)
        return
    console.print(f"{view.describe()} -> {out}", markup=False, highlight=False)


@app.command()
def arithmetic(
    target: str | None = typer.Argument(None, metavar="[MODEL|RUN]",
                                        help="a model or run whose --layer to draw (or give the numbers)"),
    layer: str = typer.Option("Conv2d:0", "--layer",
                              help="with MODEL: a conv or pool layer (name or Type:index)"),
    input_size: str | None = typer.Option(None, "--input", help="with MODEL: input as CxHxW"),
    n: int | None = typer.Option(None, "--n", help="input size [default: 7]"),
    k: int | None = typer.Option(None, "--k", help="kernel size [default: 3]"),
    p: int | None = typer.Option(None, "--p", help="padding on each side [default: 0]"),
    s: int | None = typer.Option(None, "--s", help="stride [default: 1]"),
    d: int | None = typer.Option(None, "--d", help="dilation [default: 1]"),
    kind: str = typer.Option("conv", "--kind", help="conv, maxpool or avgpool (with the numbers)"),
    out: Path = typer.Option(Path("arithmetic.png"), "--out", help="figure file"),
    as_json: bool = typer.Option(False, "--json", help="print the numbers as JSON"),
) -> None:
    """Convolution arithmetic of one layer: grids, windows and out = floor((n + 2p - d(k-1) - 1)/s) + 1.

    --json prints {source, figure, layer, kind, n, k, padding, stride, dilation, ceil_mode, out,
    formula: {rows, cols}, torch_out} (torch_out: the size PyTorch gives, always equal to out).
    """
    from ..options import input_size as parse_size
    from ..report.measures import arithmetic_files

    a, doc = arithmetic_files(target, out=out, layer=layer, input_size=parse_size(input_size), kind=kind,
                              numbers={"n": n, "k": k, "p": p, "s": s, "d": d})
    if as_json:
        print_json(doc)
        return
    console.print(f"{a.layer or a.kind}: {a.formula(0)}"
                  + ("" if a.square else f" (rows), {a.formula(1)} (cols)") + f" -> {out}",
                  markup=False, highlight=False)


@app.command()
def probe(
    run: Path = typer.Argument(..., help="a run folder"),
    data: str | None = typer.Option(None, "--data", help="probe on this SPEC (default: the run's data)"),
    limit: int | None = typer.Option(None, "--limit", help="use about N images per split"),
    map_points: int = typer.Option(1000, "--map-points", help="validation images in the 2-D maps"),
    tsne: bool = typer.Option(True, "--tsne/--no-tsne", help="also draw the t-SNE map (a few seconds)"),
    seed: int = typer.Option(0, "--seed", help="seed of the probes and of t-SNE"),
    out: Path | None = typer.Option(None, "--out", help="folder for probe.png, embedding_map.png, probe.json "
                                                        "(default: the run folder)"),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="embedding cache [default: "
                                          "$CNNLAB_CACHE_DIR/embeddings]"),
    as_json: bool = typer.Option(False, "--json", help="print the numbers as JSON"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Linear probes on the pooled output of each stage (accuracy by depth) and a map of the last embedding.

    Writes probe.png, embedding_map.png and probe.json; --json prints {run, data, figures,
    stages: [{name, dim, train_accuracy, val_accuracy}], chance, map_points, pca_variance, cached}.
    """
    from .._progress import progress_bar
    from ..report.measures import probe_files

    with progress_bar("probe: pooled features", enabled=progress and not as_json) as update:
        doc = probe_files(run, data=data, limit=limit, map_points=map_points, tsne=tsne, seed=seed, out=out,
                          cache_dir=cache_dir, progress=update)
    if as_json:
        print_json(doc)
        return
    steps = ", ".join(f"{s['name'].removeprefix('features.')} {s['val_accuracy']:.1%}" for s in doc["stages"])
    console.print(f"probe accuracy by depth (chance {doc['chance']:.0%}): {steps}. "
                  f"Figures: {doc['figures']['probe']}, {doc['figures']['embedding_map']}",
                  markup=False, highlight=False)


@app.command()
def invariance(
    runs: list[Path] = typer.Argument(..., metavar="RUN [RUN...]", help="run folders to compare"),
    max_shift: int = typer.Option(4, "--max-shift", min=0, help="largest shift in pixels"),
    angles: str = typer.Option("5,10,15,20", "--angles", help="rotation angles in degrees"),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
    out: Path = typer.Option(Path("invariance.png"), "--out", help="figure; its JSON is written beside it"),
    as_json: bool = typer.Option(False, "--json", help="print the numbers as JSON"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Accuracy of each run on its validation images shifted by 0..k pixels and rotated: one curve per run.

    Writes the figure and, beside it, the same name with .json: {figure, runs: [{run, model, data, images,
    chance, shifts, shift_accuracy, angles, rotation_accuracy}]} (--json prints it). Shift 0 is exactly
    `cnnlab evaluate`'s accuracy.
    """
    from .._progress import progress_bar
    from ..report.measures import angles as parse_angles
    from ..report.measures import invariance_files

    degrees = parse_angles(angles)
    show = progress and not as_json
    doc = invariance_files(runs, out=out, max_shift=max_shift, degrees=degrees, batch_size=batch_size,
                           progress=lambda label: progress_bar(label, enabled=show))
    if as_json:
        print_json(doc)
        return
    for c in doc["runs"]:
        shifts = ", ".join(f"{s}px {a:.1%}" for s, a in zip(c["shifts"], c["shift_accuracy"], strict=True))
        console.print(f"{c['run']} ({c['model']}): {shifts}", markup=False, highlight=False)
    console.print(f"figure {out}, numbers {out.with_suffix('.json')}", markup=False, highlight=False)
