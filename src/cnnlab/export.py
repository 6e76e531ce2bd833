"""Export a trained run for use outside cnnlab, checked by the consumer's own runtime.

:func:`export_run` writes the run's model as ONNX (read back with onnxruntime) or TorchScript (read back
with ``torch.jit.load``), with its preprocessing recorded beside it so that a consumer needs nothing from
cnnlab: the input size and colour mode, ``mean``/``std``, the class names and how to read the output. The
record is a sidecar JSON (``<file>.json``) and is also inside the file: the ONNX model's ``metadata_props``,
the TorchScript archive's extra file ``cnnlab.json``.

After writing, the file is loaded by that runtime and a few validation images go through both it and
PyTorch; the largest |logit difference| and the top-1 agreement are measured. Above ``tolerance`` the
export fails with an error and the file is not left behind (it is written to a temporary file that only
replaces the destination when the check passes).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._io import atomic_path, write_json
from .errors import ArgumentError, CnnlabError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .runfolder.folder import LoadedRun

__all__ = ["ExportCheck", "ExportFormat", "ExportResult", "export_run", "preprocessing_record"]


class ExportFormat(StrEnum):
    """File formats ``cnnlab export --format`` writes."""

    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"


#: File name of an export in the run folder when no ``out`` is given.
DEFAULT_NAMES = {ExportFormat.ONNX: "model.onnx", ExportFormat.TORCHSCRIPT: "model.torchscript.pt"}
#: Largest |logit difference| between the runtime and PyTorch an export may show.
DEFAULT_TOLERANCE = 1e-4
#: Validation images the check runs through both.
CHECK_IMAGES = 20
#: The batch size of the check besides 1 when the batch is dynamic (not a divisor of 20: a short batch too).
CHECK_BATCH = 7
#: Name of the record inside a TorchScript archive (``torch.jit.load(f, _extra_files={NAME: ""})``).
TORCHSCRIPT_RECORD = "cnnlab.json"
_ONNX_OPSET = 18
#: PyTorch's deprecation notice on every torch.jit call (TorchScript still saves and loads): noise here.
_JIT_DEPRECATED = r".*torch\.jit.* is deprecated"


@dataclass
class ExportCheck:
    """The runtime's logits against PyTorch's on validation images.

    Attributes:
        runtime: The runtime that read the file back, with its version.
        images: Validation images compared.
        batch_sizes: Batch sizes they went through the runtime in.
        max_abs_diff: Largest |logit difference| over all images and outputs.
        top1_agreement: Fraction of images with the same predicted class.
        tolerance: The largest ``max_abs_diff`` accepted.
    """

    runtime: str
    images: int
    batch_sizes: list[int]
    max_abs_diff: float
    top1_agreement: float
    tolerance: float

    @property
    def passed(self) -> bool:
        """True when the logits agree within ``tolerance``."""
        return self.max_abs_diff <= self.tolerance


@dataclass
class ExportResult:
    """An export that passed its check.

    Attributes:
        path: The model file.
        sidecar: The preprocessing record beside it (``<path>.json``).
        format: ``onnx`` or ``torchscript``.
        dynamic_batch: Whether the file takes any batch size (else batch 1).
        check: The runtime's agreement with PyTorch.
    """

    path: Path
    sidecar: Path
    format: ExportFormat
    dynamic_batch: bool
    check: ExportCheck

    def summary(self) -> str:
        """One line: where the files went and how well the runtime agrees with PyTorch."""
        c = self.check
        batch = "any" if self.dynamic_batch else 1
        return (f"wrote {self.path} ({self.format.value}, batch {batch}) and its preprocessing "
                f"{self.sidecar}; {c.runtime} on {c.images} validation images (batches of "
                f"{', '.join(map(str, c.batch_sizes))}): max |logit difference| {c.max_abs_diff:.3g} "
                f"(tolerance {c.tolerance:g}), top-1 agreement {c.top1_agreement:.1%}")

    def to_dict(self) -> dict[str, Any]:
        """The ``cnnlab export --json`` document."""
        c = self.check
        return {
            "path": str(self.path), "sidecar": str(self.sidecar), "format": self.format.value,
            "dynamic_batch": self.dynamic_batch, "runtime": c.runtime, "images": c.images,
            "batch_sizes": c.batch_sizes, "max_abs_diff": c.max_abs_diff,
            "top1_agreement": c.top1_agreement, "tolerance": c.tolerance,
        }


def preprocessing_record(run: LoadedRun, *, fmt: ExportFormat, dynamic_batch: bool) -> dict[str, Any]:
    """What a consumer of the exported file needs to feed it and read its output, as plain JSON types.

    Args:
        run: The run folder read back.
        fmt: The export's format.
        dynamic_batch: Whether the file takes any batch size.

    Returns:
        The record (input shape, preprocessing formula with ``mean``/``std``, classes, output rule).
    """
    c, h, w = run.image_size
    binary = run.binary
    return {
        "format": fmt.value,
        "model": run.config.model_name,
        "input": {"name": "input", "dtype": "float32", "layout": "NCHW",
                  "shape": ["batch" if dynamic_batch else 1, c, h, w]},
        "preprocessing": {
            "color_mode": "L" if c == 1 else "RGB",
            "resize": {"height": h, "width": w, "interpolation": "bilinear, antialiased",
                       "keep_aspect": False},
            "formula": "(pixel / 255 - mean) / std, per channel",
            "mean": list(run.mean),
            "std": list(run.std),
        },
        "output": {
            "name": "logits",
            "shape": ["batch" if dynamic_batch else 1, 1 if binary else len(run.classes)],
            "decision": "sigmoid(logit) > 0.5 means classes[1], else classes[0]" if binary
            else "argmax over the logits indexes classes; softmax gives probabilities",
        },
        "classes": list(run.classes),
    }


def _check_images(run: LoadedRun, count: int) -> torch.Tensor:
    """The first ``count`` images of the run's validation split, as the model's normalised input."""
    import torch

    from .train.evaluate import load_eval_data

    dataset, _ = load_eval_data(run)
    n = min(count, len(dataset))
    if n == 0:
        raise CnnlabError(f"{run.path}: the validation split is empty; nothing to check the export with")
    images, _ = dataset.get_batch(torch.arange(n))
    return run.preprocess.normalize(images)


def _batches(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    return list(x.split(size)) if size > 0 else [x]


def _predicted(logits: torch.Tensor, binary: bool) -> torch.Tensor:
    return (logits.reshape(-1) > 0).long() if binary else logits.argmax(dim=1)


def _write_onnx(
    model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool, meta: dict[str, str]
) -> None:
    import torch

    shapes = ({0: torch.export.Dim("batch", min=1, max=1 << 16)},) if dynamic else None
    program = torch.onnx.export(
        model, (example,), input_names=["input"], output_names=["logits"], dynamo=True,
        dynamic_shapes=shapes, opset_version=_ONNX_OPSET, external_data=False, verbose=False,
    )
    if program is None:  # only when a file name is passed, which this does not
        raise CnnlabError("torch.onnx.export returned no program")
    for key, value in meta.items():
        program.model.metadata_props[key] = value
    program.save(str(path), external_data=False)


def _run_onnx(path: Path, batches: list[torch.Tensor]) -> tuple[torch.Tensor, str]:
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = [torch.from_numpy(session.run(None, {name: b.numpy()})[0]) for b in batches]
    return torch.cat(out), f"onnxruntime {ort.__version__}"


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path, record: str) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=FutureWarning)
        with torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_RECORD: record})


def _run_torchscript(path: Path, batches: list[torch.Tensor]) -> tuple[torch.Tensor, str]:
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=FutureWarning)
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        out = [loaded(b) for b in batches]
    return torch.cat(out), f"torch.jit.load (torch {torch.__version__})"


def _onnx_metadata(record: dict[str, Any]) -> dict[str, str]:
    """The record as ONNX ``metadata_props`` (strings): each top-level fact, and the whole record."""
    pre = record["preprocessing"]
    flat = {"mean": pre["mean"], "std": pre["std"], "input_size": record["input"]["shape"][1:],
            "color_mode": pre["color_mode"], "classes": record["classes"],
            "output": record["output"]["decision"]}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in flat.items()}
    meta["cnnlab"] = json.dumps(record)
    return meta


def export_run(
    run: str | Path,
    *,
    fmt: ExportFormat | str = ExportFormat.ONNX,
    out: str | Path | None = None,
    dynamic_batch: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    images: int = CHECK_IMAGES,
) -> ExportResult:
    """Write a run's model as ONNX or TorchScript and check it with the runtime that will read it.

    Args:
        run: A run folder.
        fmt: ``onnx`` or ``torchscript``.
        out: The model file, or a folder for it (default ``<run>/model.onnx`` or
            ``<run>/model.torchscript.pt``); the preprocessing record goes beside it as ``<file>.json``.
        dynamic_batch: Let the file take any batch size (else it takes batch 1).
        tolerance: Largest |logit difference| from PyTorch accepted on the check images.
        images: Validation images to check with (the first ones of the run's validation split).

    Returns:
        The written file, its record and the check's numbers.

    Raises:
        CnnlabError: Not a run folder; the runtime's logits differ from PyTorch's by more than
            ``tolerance`` (nothing is written then; an older export at ``out`` stays as it was).
    """
    import torch

    from .train import load_run

    try:
        fmt = ExportFormat(fmt)
    except ValueError:
        raise ArgumentError(f"{fmt!r}: unknown; choose one of {', '.join(f.value for f in ExportFormat)}",
                            param="format") from None
    from .options import at_least
    from .values import check_number

    check_number(tolerance, "tolerance", low=0)
    at_least(images, 1, "images")
    from .runfolder.folder import check_output

    path = Path(out) if out is not None else Path(run) / DEFAULT_NAMES[fmt]
    if path.is_dir():  # a folder given as `out`: the file goes inside it under its default name
        path = path / DEFAULT_NAMES[fmt]
    for written in (path, path.with_name(path.name + ".json")):  # before the work: a run's files are kept
        check_output(written, writer="export")
    loaded = load_run(run)
    model = loaded.model.eval().float().cpu()
    record = preprocessing_record(loaded, fmt=fmt, dynamic_batch=dynamic_batch)
    x = _check_images(loaded, images)
    with torch.no_grad():
        expected = model(x)
    batch_sizes = [CHECK_BATCH, 1] if dynamic_batch else [1]
    # A dynamic batch dimension traced from batch 1 would be specialised to 1: trace it from 2.
    example = x[:2] if dynamic_batch and len(x) >= 2 else x[:1]
    with atomic_path(path, option="--out") as tmp:
        if fmt is ExportFormat.ONNX:
            _write_onnx(model, example, tmp, dynamic_batch, _onnx_metadata(record))
            reader = _run_onnx
        else:
            _write_torchscript(model, example, tmp, json.dumps(record))
            reader = _run_torchscript
        worst, agree, runtime = 0.0, 1.0, ""
        for size in batch_sizes:
            got, runtime = reader(tmp, _batches(x, size))
            worst = max(worst, float((got - expected).abs().max()))
            same = _predicted(got, loaded.binary) == _predicted(expected, loaded.binary)
            agree = min(agree, float(same.float().mean()))
        check = ExportCheck(runtime, len(x), batch_sizes, worst, agree, tolerance)
        if not check.passed:
            raise CnnlabError(
                f"{path}: not written: {runtime} gives logits up to {worst:.3g} away from PyTorch's on "
                f"{len(x)} validation images (tolerance {tolerance:g}, top-1 agreement {agree:.1%}); "
                "try the other `format`[, or raise `tolerance` if that difference is acceptable]"
            )
    sidecar = write_json(path.with_name(path.name + ".json"), record)
    return ExportResult(path, sidecar, fmt, dynamic_batch, check)
