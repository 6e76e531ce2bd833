"""`cnnlab export`: a run's model as ONNX or TorchScript, checked by the runtime that will read it."""

from __future__ import annotations

from pathlib import Path

import typer

from ..export import CHECK_IMAGES, DEFAULT_TOLERANCE, ExportFormat
from ._app import app, console, print_json


@app.command()
def export(
    run: Path = typer.Argument(..., help="a run folder"),
    fmt: ExportFormat = typer.Option(ExportFormat.ONNX, "--format", help="the file format"),
    out: Path | None = typer.Option(
        None, "--out", help="the model file [default: RUN/model.onnx or RUN/model.torchscript.pt]"
    ),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="any batch size (else batch 1)"),
    tolerance: float = typer.Option(
        DEFAULT_TOLERANCE, "--tolerance", help="largest |logit difference| from PyTorch accepted"
    ),
    images: int = typer.Option(CHECK_IMAGES, "--images", min=1, help="validation images to check with"),
    json_out: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Write the model with its preprocessing (mean, std, input size, classes) in the file and beside it
    (FILE.json), read it back with onnxruntime or torch.jit.load and compare its logits with PyTorch's on
    validation images; above --tolerance nothing is written and the exit status is 2."""
    from ..export import export_run

    result = export_run(run, fmt=fmt, out=out, dynamic_batch=dynamic_batch, tolerance=tolerance,
                        images=images)
    if json_out:
        print_json(result.to_dict())
        return
    c = result.check
    console.print(
        f"wrote {result.path} ({result.format.value}, batch {'any' if result.dynamic_batch else 1}) and its "
        f"preprocessing {result.sidecar}; {c.runtime} on {c.images} validation images (batches of "
        f"{', '.join(map(str, c.batch_sizes))}): max |logit difference| {c.max_abs_diff:.3g} "
        f"(tolerance {c.tolerance:g}), top-1 agreement {c.top1_agreement:.1%}",
        markup=False, highlight=False,
    )
