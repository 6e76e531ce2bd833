"""`cnnlab rf`, `cnnlab arithmetic`, `cnnlab probe`, `cnnlab invariance`: the course's ideas as figures.

* ``rf``: the theoretical receptive field of a unit (summary's number) drawn on the input, its effective
  field (input gradient), and field size and jump layer by layer;
* ``arithmetic``: one conv/pool layer's grids and its output-size formula filled in;
* ``probe``: linear-probe accuracy by depth and a 2-D map of the last embedding;
* ``invariance``: accuracy of one or more runs on shifted and rotated images.

Heavy imports happen inside the commands, so that ``cnnlab --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..errors import CnnlabError
from ._app import app, console, print_json


def _dims(text: str | None) -> tuple[int, int, int] | None:
    from .models import _parse_input

    return _parse_input(text) if text else None  # type: ignore[return-value]


def _writable(out: Path) -> None:
    from .._io import ensure_writable_dir

    ensure_writable_dir(out.parent if str(out.parent) else Path("."), option="--out")


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
    import dataclasses

    import torch

    from .._io import save_figure
    from ..interpret.fields import receptive_field_view
    from ..report.lecture_plots import receptive_field_figure
    from ..source import resolve_model

    dims = _dims(input_size)
    src = resolve_model(target, input_size=dims)
    for notice in src.notices:
        console.print(f"note: {notice}")
    _writable(out)
    size = dims or src.image_size
    if image is not None:
        raw, x = dataclasses.replace(src.preprocess, image_size=size)([image])
        canvas, label = raw[0], f"the image {image.name}"
    else:
        g = torch.Generator().manual_seed(seed)
        noise = torch.randint(0, 256, (samples, *size), generator=g, dtype=torch.uint8)
        x, canvas, label = src.preprocess.normalize(noise), None, f"{samples} random images"
    view = receptive_field_view(src.model, x, layer=layer, model_name=src.label, inputs_label=label,
                                learned=src.learned)
    save_figure(out, receptive_field_figure(view, canvas))
    if as_json:
        print_json({"source": src.label, "figure": str(out), **view.to_dict()})
        return
    top, left, bottom, right = (int(v) if float(v).is_integer() else v for v in view.box)
    sb = view.support_box()
    effective = (f"gradient non-zero on rows {sb[0]}..{sb[2]}, cols {sb[1]}..{sb[3]} "
                 f"({'inside' if view.support_inside() else 'OUTSIDE'} the field)") if sb else "gradient zero"
    jump = view.field.jump or (0.0, 0.0)
    jump_text = f"{jump[0]:g}" if jump[0] == jump[1] else f"{jump[0]:g}x{jump[1]:g}"
    console.print(f"{view.layer}: unit {view.unit} sees {view.field.rf[0]}x{view.field.rf[1]} px "
                  f"(rows {top}..{bottom}, cols {left}..{right}), jump {jump_text} px; {effective} "
                  f"over {label} -> {out}", markup=False, highlight=False)


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
    from .._io import save_figure
    from ..report.lecture_plots import conv_arithmetic_figure
    from ..summary import arithmetic as arith

    numbers = {"n": n, "k": k, "p": p, "s": s, "d": d}
    if target is not None:
        given = [f"--{name}" for name, v in numbers.items() if v is not None]
        if given:
            raise CnnlabError(f"give MODEL --layer NAME or the numbers ({', '.join(given)}), not both")
        from ..source import resolve_model

        dims = _dims(input_size)
        src = resolve_model(target, input_size=dims)
        a = arith.layer_arithmetic(src.model, layer, dims or src.image_size)  # type: ignore[arg-type]
        label: str | None = src.label
    else:
        if kind not in ("conv", "maxpool", "avgpool"):
            raise CnnlabError(f"--kind {kind!r}: use conv, maxpool or avgpool")
        defaults = {"n": 7, "k": 3, "p": 0, "s": 1, "d": 1}
        values = {name: defaults[name] if v is None else v for name, v in numbers.items()}
        a = arith.arithmetic(values["n"], values["k"], p=values["p"], s=values["s"], d=values["d"],
                             kind=kind)  # type: ignore[arg-type]
        label = None
    torch_out = arith.torch_output(a)
    if torch_out != a.out:  # the formula is the definition PyTorch implements: a mismatch is a bug here
        raise RuntimeError(f"formula gives {a.out}, PyTorch {torch_out} for {a}")
    _writable(out)
    save_figure(out, conv_arithmetic_figure(a))
    if as_json:
        print_json({"source": label, "figure": str(out), **a.to_dict(), "torch_out": list(torch_out)})
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
    from .._io import save_figure, write_json
    from .._progress import progress_bar
    from ..interpret.probe import load_run_data, probe_run
    from ..report.measure_plots import embedding_map_figure, probe_figure
    from ..train.embeddings import default_cache_dir
    from ..train.runfolder import load_run

    loaded = load_run(run)
    folder = out or run
    from .._io import ensure_writable_dir

    ensure_writable_dir(folder, option="--out")
    bundle = load_run_data(loaded, data, limit=limit)
    with progress_bar("probe: pooled features", enabled=progress and not as_json) as update:
        result = probe_run(loaded, bundle, map_points=map_points, tsne=tsne, seed=seed,
                           cache_dir=cache_dir or default_cache_dir(), progress=update)
    name = f"{loaded.config.model} ({run})"
    figures = {"probe": folder / "probe.png", "embedding_map": folder / "embedding_map.png"}
    save_figure(figures["probe"], probe_figure(result, title=f"{name}: linear probes by depth"))
    save_figure(figures["embedding_map"], embedding_map_figure(result))
    doc: dict[str, Any] = {"run": str(run), "data": data or loaded.config.data,
                           "figures": {k: str(v) for k, v in figures.items()}, **result.to_dict()}
    write_json(folder / "probe.json", doc)
    if as_json:
        print_json(doc)
        return
    pairs = zip(result.stages, result.val_accuracy, strict=True)
    steps = ", ".join(f"{s.removeprefix('features.')} {a:.1%}" for s, a in pairs)
    console.print(f"probe accuracy by depth (chance {result.chance:.0%}): {steps}. "
                  f"Figures: {figures['probe']}, {figures['embedding_map']}", markup=False, highlight=False)


def _angles(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CnnlabError(f"--angles {text!r}: give degrees separated by commas, e.g. 5,10,15") from None


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
    from .._io import save_figure, write_json
    from .._progress import progress_bar
    from ..interpret.invariance import measure_invariance
    from ..report.measure_plots import invariance_figure
    from ..train.evaluate import load_eval_data
    from ..train.runfolder import load_run

    degrees = _angles(angles)
    _writable(out)
    loaded = [load_run(r) for r in runs]  # every folder is checked before the slow part
    curves = []
    for r in loaded:
        dataset, spec = load_eval_data(r)
        with progress_bar(f"invariance: {r.path}", enabled=progress and not as_json) as update:
            curves.append(measure_invariance(r, dataset, max_shift=max_shift, angles=degrees, spec=spec,
                                             batch_size=batch_size, progress=update))
    save_figure(out, invariance_figure(curves))
    doc = {"figure": str(out), "runs": [c.to_dict() for c in curves]}
    write_json(out.with_suffix(".json"), doc)
    if as_json:
        print_json(doc)
        return
    for c in curves:
        shifts = ", ".join(f"{s}px {a:.1%}" for s, a in zip(c.shifts, c.shift_accuracy, strict=True))
        console.print(f"{c.label} ({c.model}): {shifts}", markup=False, highlight=False)
    console.print(f"figure {out}, numbers {out.with_suffix('.json')}", markup=False, highlight=False)
