"""Measurements of a run or a model, written as figures and JSON and returned as records.

One function per measurement, the same for the CLI (``cnnlab evaluate|probe|invariance|rf|arithmetic``,
whose ``--json`` prints the record) and a notebook: :func:`evaluation_files`, :func:`probe_files`,
:func:`invariance_files`, :func:`receptive_field_files`, :func:`arithmetic_files`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _io
from ..errors import ArgumentError, CnnlabError

if TYPE_CHECKING:
    from ..receptive.view import ReceptiveFieldView
    from ..summary.arithmetic import ConvArithmetic
    from ..train.evaluate import EvalResult
    from ..train.verdict import Verdict

__all__ = ["EvaluationFiles", "angles", "arithmetic_files", "evaluation_files", "invariance_files",
           "probe_files", "receptive_field_files"]

#: A progress callback ``(done, total)`` of a long measurement.
Progress = Callable[[int, int], None]


@dataclass
class EvaluationFiles:
    """What :func:`evaluation_files` measured and wrote.

    Attributes:
        result: The evaluation.
        data: The data SPEC it ran on.
        record: The ``--json`` record (the result plus ``"weights": "trained"`` and ``"verdict"``).
        written: Where the JSON and the confusion matrix went.
        gallery: The top-losses figure, or None when none was drawn.
        verdict: The verdict of the run's kept weights (:mod:`cnnlab.train.verdict`).
    """

    result: EvalResult
    data: str
    record: dict[str, Any]
    written: str
    gallery: Path | None
    verdict: Verdict

    def table(self, run: Path) -> Any:
        """The per-class precision, recall, F1 and support as a Rich table titled with the accuracy."""
        from rich.table import Table

        r = self.result
        table = Table(title=f"{run} on {self.data}: accuracy {r.accuracy:.2%}, loss {r.loss:.4f}")
        for col in ("class", "precision", "recall", "f1", "support"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for name, m in r.per_class.items():
            table.add_row(name, *(f"{m[k]:.3f}" for k in ("precision", "recall", "f1")), str(m["support"]))
        return table

    def closing_lines(self) -> list[str]:
        """The five top losses, where the files went, then the verdict: what one reads after the table."""
        lines = [f"top loss {t['loss']:.3f}: {t.get('path', '#' + str(t.get('index')))} (label {t['label']}, "
                 f"predicted {t['predicted']})" for t in self.result.top_losses[:5]]
        lines.append(f"Confusion matrix and JSON written to {self.written}.")
        if self.gallery is not None:
            lines.append(f"The top losses, drawn with their classes and Grad-CAM: {self.gallery}.")
        return [*lines, self.verdict.line()]


def evaluation_files(run: Path, *, data: str | None = None, batch_size: int = 256,
                     top_losses: int = 10) -> EvaluationFiles:
    """Evaluate a run folder and write evaluation.json, confusion.png and top_losses.png into it.

    Args:
        run: The run folder.
        data: Evaluate on this SPEC's val split (default: the run's).
        batch_size: Images per forward pass.
        top_losses: How many highest-loss images to list (and draw, with their Grad-CAM).

    Returns:
        The result and where it went.

    Raises:
        CnnlabError: The run folder is not writable (said before the work), or a write failed (a full
            disk): the run is not evaluated, and the exit status says so.
    """
    from .._progress import phase_line
    from ..runfolder.folder import load_run
    from ..train.evaluate import evaluate, load_eval_data
    from ..train.verdict_run import evaluation_verdict, phase_progress
    from .plots import confusion_figure

    phase_line(f"loading {run} ...")
    loaded = load_run(run)
    fix = "evaluate writes evaluation.json into the run folder: make it writable, or evaluate a copy"
    _io.ensure_writable_dir(run, option="RUN", fix=fix)  # before the slow part
    dataset, spec = load_eval_data(loaded, data)
    phase_line(f"evaluating {run} on {spec} ({len(dataset)} images) ...")
    result = evaluate(loaded, dataset, spec=spec, batch_size=batch_size, top_losses=top_losses)
    verdict = evaluation_verdict(loaded, result, dataset, own_data=data is None, progress=phase_progress())
    # a run folder: the weights it learned
    doc = {**result.to_dict(), "weights": "trained", "verdict": verdict.to_dict()}
    images = len(loaded.image_size) == 3  # the gallery draws images; series' maps are explain's figure
    gallery: Path | None = run / "top_losses.png" if result.top_losses and images else None
    try:
        _io.write_json(run / "evaluation.json", {"data": spec, **doc})
        _io.save_figure(run / "confusion.png", confusion_figure(result.confusion, result.classes))
        where = f"{run / 'evaluation.json'} and {run / 'confusion.png'}"
        if gallery is not None:
            from ..interpret.top_losses import top_loss_gallery
            from .evaluation_plots import top_losses_figure

            phase_line(f"drawing the {len(result.top_losses)} top losses with their Grad-CAM ...")
            _io.save_figure(gallery, top_losses_figure(top_loss_gallery(loaded, dataset, result)))
    except OSError as exc:  # a full disk, or a folder made read-only meanwhile
        raise CnnlabError(f"cannot write {exc.filename or run} ({exc.strerror or exc}); free space or make "
                          f"{run} writable, then evaluate again") from None
    return EvaluationFiles(result, spec, doc, where, gallery, verdict)


def probe_files(run: Path, *, data: str | None = None, limit: int | None = None, map_points: int = 1000,
                tsne: bool = True, seed: int = 0, out: Path | None = None,
                cache_dir: str | os.PathLike[str] | None = None,
                progress: Progress | None = None) -> dict[str, Any]:
    """Linear probes on the pooled output of each stage and a map of the last embedding.

    Writes probe.png, embedding_map.png and probe.json into ``out`` (default: the run folder).

    Returns:
        ``{run, data, figures, stages: [{name, dim, train_accuracy, val_accuracy}], chance, map_points,
        pca_variance, cached}``.
    """
    from ..interpret.probe import load_run_data, probe_run
    from ..runfolder.folder import load_run
    from ..source import require_images
    from ..transfer.embeddings import default_cache_dir
    from .measure_plots import embedding_map_figure, probe_figure

    loaded = load_run(run)
    require_images(loaded.image_size, str(run), "probe")
    folder = out or run
    _io.ensure_writable_dir(folder, option="--out")
    bundle = load_run_data(loaded, data, limit=limit)
    result = probe_run(loaded, bundle, map_points=map_points, tsne=tsne, seed=seed,
                       cache_dir=cache_dir or default_cache_dir(), progress=progress)
    name = f"{loaded.config.model} ({run})"
    figures = {"probe": folder / "probe.png", "embedding_map": folder / "embedding_map.png"}
    _io.save_figure(figures["probe"], probe_figure(result, title=f"{name}: linear probes by depth"))
    _io.save_figure(figures["embedding_map"], embedding_map_figure(result))
    doc: dict[str, Any] = {"run": str(run), "data": data or loaded.config.data,
                           "figures": {k: str(v) for k, v in figures.items()}, **result.to_dict()}
    _io.write_json(folder / "probe.json", doc)
    return doc


def angles(text: str) -> list[float]:
    """``"5,10,15"`` -> rotation angles in degrees, each finite and within a full turn either way (none: "").

    Raises:
        ArgumentError: naming ``angles``: text that is not a number, NaN, an infinity, over a full turn.
    """
    from ..interpret.invariance import MAX_ANGLE
    from ..values import parse_numbers

    return parse_numbers(text, "angles", low=-MAX_ANGLE, high=MAX_ANGLE, example="5,10,15", allow_empty=True)


def invariance_files(runs: Sequence[Path], *, out: Path, max_shift: int = 4,
                     degrees: Sequence[float] = (5, 10, 15, 20), batch_size: int = 256,
                     progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Accuracy of each run on its validation images shifted by 0..k pixels and rotated: one curve per run.

    Writes the figure ``out`` and, beside it, the same name with .json. Shift 0 is exactly
    ``cnnlab evaluate``'s accuracy.

    Args:
        runs: Run folders to compare.
        out: The figure.
        max_shift: Largest shift in pixels.
        degrees: Rotation angles.
        batch_size: Images per forward pass.
        progress: ``progress(label)`` -> a context manager yielding a ``(done, total)`` callback.

    Returns:
        ``{figure, runs: [{run, model, data, images, chance, shifts, shift_accuracy, angles,
        rotation_accuracy}]}``.
    """
    from contextlib import nullcontext

    from ..interpret.invariance import measure_invariance
    from ..runfolder.folder import check_output, load_run
    from ..train.evaluate import load_eval_data
    from .measure_plots import invariance_figure

    _io.ensure_writable_dir(out.parent if str(out.parent) else Path("."), option="--out")
    for path in (out, out.with_suffix(".json")):
        check_output(path)
    from ..source import require_images

    loaded = [load_run(r) for r in runs]  # every folder is checked before the slow part
    for folder, one in zip(runs, loaded, strict=True):
        require_images(one.image_size, str(folder), "invariance")
    curves = []
    for r in loaded:
        dataset, spec = load_eval_data(r)
        with (progress(f"invariance: {r.path}") if progress else nullcontext(None)) as update:
            curves.append(measure_invariance(r, dataset, max_shift=max_shift, angles=list(degrees), spec=spec,
                                             batch_size=batch_size, progress=update))
    _io.save_figure(out, invariance_figure(curves))
    doc = {"figure": str(out), "runs": [c.to_dict() for c in curves]}
    _io.write_json(out.with_suffix(".json"), doc)
    return doc


def receptive_field_files(target: str, *, out: Path, image: Path | None = None, layer: str = "auto",
                          input_size: tuple[int, int, int] | None = None, samples: int = 16,
                          seed: int = 0) -> tuple[ReceptiveFieldView, dict[str, Any], list[str]]:
    """The receptive field of a layer's centre unit, theoretical and effective, drawn on the input.

    Args:
        target: A run folder, a registry name or a layer spec.
        out: The figure.
        image: An image to draw on (default: a grey canvas, the effective field over random images).
        layer: ``auto`` (the CAM layer), a dotted name or ``Type:index``.
        input_size: (C, H, W); default: the model's own.
        samples: Random images the effective field is averaged over (without ``image``).
        seed: Seed of the random images.

    Returns:
        The view, the record ``{source, figure, model, layer, input_size, output_shape, unit,
        receptive_field, jump, box, effective, layers, learned}`` and the model's notices.
    """
    import dataclasses

    from ..receptive.view import check_field_memory, noise_images, receptive_field_view
    from ..runfolder.folder import check_output
    from ..source import require_images, resolve_model
    from .lecture_plots import receptive_field_figure

    _io.ensure_writable_dir(out.parent if str(out.parent) else Path("."), option="--out")
    check_output(out)  # before the model loads
    src = resolve_model(target, input_size=input_size)
    require_images(src.image_size, src.label, "rf")
    size = input_size or src.image_size
    check_field_memory(src.model, size, 1 if image is not None else samples, model_name=src.label)
    if image is not None:
        raw, x = dataclasses.replace(src.preprocess, image_size=size)([image])
        canvas, label = raw[0], f"the image {image.name}"
    else:
        noise = noise_images(size, samples, seed=seed)
        x, canvas, label = src.preprocess.normalize(noise), None, f"{samples} random images"
    view = receptive_field_view(src.model, x, layer=layer, model_name=src.label, inputs_label=label,
                                learned=src.learned)
    _io.save_figure(out, receptive_field_figure(view, canvas))
    return view, {"source": src.label, "figure": str(out), **view.to_dict()}, list(src.notices)


def arithmetic_files(target: str | None, *, out: Path, layer: str = "Conv2d:0",
                     input_size: tuple[int, int, int] | None = None, kind: str = "conv",
                     numbers: dict[str, int | None] | None = None) -> tuple[ConvArithmetic, dict[str, Any]]:
    """Convolution arithmetic of one layer: its grids and ``out = floor((n + 2p - d(k-1) - 1)/s) + 1``.

    Args:
        target: A model or run whose ``layer`` to draw, or None to give the numbers.
        out: The figure.
        layer: With ``target``: a conv or pool layer (name or ``Type:index``).
        input_size: With ``target``: (C, H, W).
        kind: Without ``target``: conv, maxpool or avgpool.
        numbers: Without ``target``: ``{"n", "k", "p", "s", "d"}`` (None: 7, 3, 0, 1, 1).

    Returns:
        The arithmetic and the record ``{source, figure, layer, kind, n, k, padding, stride, dilation,
        ceil_mode, out, formula: {rows, cols}, torch_out}`` (torch_out: the size PyTorch gives).
    """
    from ..runfolder.folder import check_output
    from ..summary import arithmetic as arith
    from .lecture_plots import conv_arithmetic_figure

    check_output(out)
    numbers = numbers or {}
    if target is not None:
        given = [f"`{name}`" for name, v in numbers.items() if v is not None]
        if given:
            raise CnnlabError(f"give MODEL `layer` NAME or the numbers ({', '.join(given)}), not both")
        from ..source import require_images, resolve_model

        src = resolve_model(target, input_size=input_size)
        require_images(src.image_size, src.label, "arithmetic")
        a = arith.layer_arithmetic(src.model, layer, input_size or src.image_size)  # type: ignore[arg-type]
        label: str | None = src.label
    else:
        if kind not in ("conv", "maxpool", "avgpool"):
            raise ArgumentError(f"{kind!r}: use conv, maxpool or avgpool", param="kind")
        defaults = {"n": 7, "k": 3, "p": 0, "s": 1, "d": 1}
        values: dict[str, int] = {name: v if numbers.get(name) is None else int(numbers[name] or 0)
                                  for name, v in defaults.items()}
        a = arith.arithmetic(values["n"], values["k"], p=values["p"], s=values["s"], d=values["d"],
                             kind=kind)  # type: ignore[arg-type]
        label = None
    torch_out = arith.torch_output(a)
    if torch_out != a.out:  # the formula is the definition PyTorch implements: a mismatch is a bug here
        raise RuntimeError(f"formula gives {a.out}, PyTorch {torch_out} for {a}")
    _io.ensure_writable_dir(out.parent if str(out.parent) else Path("."), option="--out")
    _io.save_figure(out, conv_arithmetic_figure(a))
    return a, {"source": label, "figure": str(out), **a.to_dict(), "torch_out": list(torch_out)}
