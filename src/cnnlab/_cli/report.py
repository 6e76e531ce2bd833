"""`cnnlab report`: one self-contained HTML page that tells a run's whole story, or compares several runs.

Heavy imports (torch, matplotlib, the report builders) happen inside the command.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import typer

from ._app import app, console


@app.command()
def report(
    runs: list[Path] = typer.Argument(
        ..., metavar="RUN [RUN...]", help="Run folders (several: a comparison)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="HTML file, or a folder for report.html [default: RUN/report.html; several runs: "
                            "report.html beside them]"
    ),
    data: str | None = typer.Option(
        None, "--data", help="show and evaluate this SPEC instead of each run's data"
    ),
    top_losses: int = typer.Option(16, "--top-losses", min=0, help="highest-loss validation images shown"),
) -> None:
    """Write one HTML file (figures, CSS and JS inside; no other request) with a run's whole story.

    Sections: the run (model, data, command that reproduces it, time, parameters), the data, the model
    summary, the training curves, the evaluation (confusion matrix, top losses with Grad-CAM) and inside
    the network (kernels, feature maps, filter visualisations, Grad-CAM per class). With several runs the
    page first compares them: curves overlaid and one table.
    """
    from .._io import ensure_writable_dir
    from ..report.assemble import make_report, report_output
    from ..report.document import Missing
    from ..train.run import quiet_lightning

    dest = report_output(runs, out)
    argv = [
        "cnnlab",
        "report",
        *map(str, runs),
        *(["--out", str(out)] if out is not None else []),
        *(["--data", data] if data is not None else []),
        "--top-losses",
        str(top_losses),
    ]
    command = shlex.join(argv)
    ensure_writable_dir(dest.parent if str(dest.parent) else Path("."), option="--out")
    quiet_lightning()
    start = time.perf_counter()
    from .._progress import step_progress

    with step_progress("report") as (on_step, on_work):  # a bar on a terminal, a line a section in a log
        path, doc = make_report(runs, out=dest, data=data, top_losses=top_losses, command=command,
                                on_step=on_step, on_work=on_work)
    missing = [b for r in doc.runs for s in r.sections for b in s.blocks if isinstance(b, Missing)]
    note = f"; {len(missing)} part(s) not shown, the page says why" if missing else ""
    console.print(
        f"wrote {path}: {len(doc.runs)} run(s), {len(doc.pictures())} pictures, "
        f"{time.perf_counter() - start:.1f} s{note}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
