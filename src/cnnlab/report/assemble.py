"""Run folders -> a :class:`~cnnlab.report.document.Report` (data) -> one self-contained HTML file.

:func:`build_report` computes every section of every run (and, for several runs, their comparison);
:func:`cnnlab.report.html.render_html` turns it into the page; :func:`make_report` does both and writes the
file atomically.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from ..errors import CnnlabError
from .compare import comparison_section
from .context import RunContext, Unavailable, WorkFn
from .document import Report, RunReport, Section
from .sec_data import data_section
from .sec_evaluation import evaluation_section
from .sec_header import header_section, versions
from .sec_inside import inside_section
from .sec_model import model_section
from .sec_training import training_section
from .sec_verdict import verdict_section

__all__ = [
    "SECTIONS", "SECTION_TITLES", "StepFn", "build_report", "default_output", "make_report", "run_page",
    "split_comparison",
]

#: The sections of every run's report, in page order: (title, builder).
SECTIONS: tuple[tuple[str, Callable[[RunContext], Section]], ...] = (
    ("Verdict", verdict_section),
    ("Run", header_section),
    ("Data", data_section),
    ("Model", model_section),
    ("Training", training_section),
    ("Evaluation", evaluation_section),
    ("Inside the network", inside_section),
)
SECTION_TITLES = tuple(title for title, _ in SECTIONS)
#: The sections that are each run's own in a comparison: its verdict and its header.
_HEAD = 2

#: ``on_step(what, steps done, steps in all)``: called before each step of the report.
StepFn = Callable[[str, int, int], None]

#: Below this many mult-adds per image the report's tensor work runs on one intra-op thread: the tensors are
#: so small that handing work between threads costs more than it saves. So does a machine whose CPUs are all
#: busy already (threads wait for each other). Measured on a 2-core machine at load 4-7: filter visualisation
#: of mnist_cnn 1.0 s on one thread, 36 s on two; of efficientnet_lite0 (384M) 0.3 s a step against 2.5-6 s.
SMALL_MODEL_MACS = 100_000_000


def _busy() -> bool:
    """The 1-minute load average is at least the number of CPUs."""
    try:
        return os.getloadavg()[0] >= (os.cpu_count() or 1)
    except (AttributeError, OSError):  # no load average (Windows)
        return False


@contextlib.contextmanager
def _threads_for(ctx: RunContext) -> Iterator[None]:
    """One torch thread while a small model's sections are computed, or on a busy machine (then restored)."""
    import torch

    try:
        single = ctx.summary.mult_adds < SMALL_MODEL_MACS or _busy()
    except Unavailable:
        single = False
    before = torch.get_num_threads()
    if single:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_runs(runs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    paths = [Path(r) for r in runs]
    if not paths:
        raise CnnlabError("give at least one RUN folder")
    for p in paths:
        if not (p / "config.yaml").is_file():
            raise CnnlabError(
                f"{p}: not a cnnlab run folder (no config.yaml); give a folder `cnnlab train` wrote"
            )
    seen = [p.resolve() for p in paths]
    twice = sorted({str(p) for p, r in zip(paths, seen, strict=True) if seen.count(r) > 1})
    if twice:
        raise CnnlabError(f"{', '.join(twice)}: given more than once; give each run folder once")
    return paths


def run_labels(paths: Sequence[Path]) -> list[str]:
    """Short names that tell runs apart: the fewest trailing folder names that differ (``runs/a`` -> ``a``).

    One run keeps the folder as given.
    """
    if len(paths) == 1:
        return [str(paths[0])]
    parts = [p.resolve().parts for p in paths]
    for depth in range(1, max(len(q) for q in parts) + 1):
        labels = ["/".join(q[-depth:]) for q in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def default_output(runs: Sequence[str | os.PathLike[str]]) -> Path:
    """Where the report goes without ``out``: ``RUN/report.html``; for several runs ``report.html`` in the
    folder that holds them all (e.g. ``runs/report.html`` for ``runs/a`` and ``runs/b``)."""
    paths = [Path(r) for r in runs]
    if len(paths) == 1:
        return paths[0] / "report.html"
    try:
        common = Path(os.path.commonpath([str(p.resolve()) for p in paths]))
    except ValueError:  # different drives (Windows)
        common = Path.cwd()
    return common / "report.html"


def report_output(runs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str] | None = None) -> Path:
    """The file the report goes to, checked before any work.

    ``out`` (an existing folder gets ``report.html`` inside it), else :func:`default_output`; a file of a
    run folder that ``cnnlab report`` does not write (``R/config.yaml``) is refused.

    Raises:
        CnnlabError: ``out`` names a file of a run folder (:func:`cnnlab.runfolder.folder.check_output`).
    """
    from ..runfolder.folder import check_output

    dest = default_output(runs) if out is None else Path(out)
    if dest.is_dir():
        dest = dest / "report.html"
    return check_output(dest, writer="report")


def build_report(
    runs: Sequence[str | os.PathLike[str]],
    *,
    data: str | None = None,
    top_losses: int = 16,
    command: str = "",
    on_step: StepFn | None = None,
    on_work: WorkFn | None = None,
) -> Report:
    """Compute the report of one run, or the comparison of several.

    Args:
        runs: Run folders written by :func:`cnnlab.train.fit`.
        data: A data SPEC shown instead of each run's own (its validation split is evaluated).
        top_losses: How many highest-loss validation images each evaluation shows.
        command: The command line that makes the report (shown on the page).
        on_step: Progress: called before each step with (what, steps done, steps in all).
        on_work: Progress inside a step (decoding images, gradient ascent): (done, total).

    Returns:
        The :class:`Report` (render it with :func:`cnnlab.report.html.render_html`).

    Raises:
        CnnlabError: A folder is not a run folder, or is given twice. A missing input of one section
            (data not reachable, no ``metrics.csv``) does not raise: that section says so.
    """
    paths = _check_runs(runs)
    contexts = [
        RunContext(p, data=data, top_losses=top_losses, work=on_work, label=label)
        for p, label in zip(paths, run_labels(paths), strict=True)
    ]
    total = len(contexts) * len(SECTIONS) + (len(contexts) > 1)
    done = 0
    reports = []
    for ctx in contexts:
        report = RunReport(ctx.name, str(ctx.path.resolve()))
        if on_step is not None:
            on_step(f"{ctx.name}: loading the model", done, total)
        with _threads_for(ctx):
            for title, build in SECTIONS:
                if on_step is not None:
                    on_step(f"{ctx.name}: {title.lower()}", done, total)
                report.sections.append(build(ctx))
                done += 1
        reports.append(report)
    comparison = None
    if len(contexts) > 1:
        if on_step is not None:
            on_step("comparison", done, total)
        comparison = comparison_section(contexts)
    if on_step is not None:
        on_step("done", total, total)
    title = (
        f"cnnlab report: {contexts[0].name}"
        if len(contexts) == 1
        else f"cnnlab: {len(contexts)} runs compared"
    )
    created = datetime.now().isoformat(sep=" ", timespec="seconds")
    return Report(title, created, command, versions(), reports, comparison)


def make_report(
    runs: Sequence[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str] | None = None,
    data: str | None = None,
    top_losses: int = 16,
    command: str = "",
    on_step: StepFn | None = None,
    on_work: WorkFn | None = None,
) -> tuple[Path, Report]:
    """Build the report of ``runs`` and write it as one self-contained HTML file (atomically).

    Args:
        runs: Run folders.
        out: The HTML file, or a folder for ``report.html`` (default: :func:`default_output`); checked
            before any work (:func:`report_output`).
        data, top_losses, command, on_step, on_work: As for :func:`build_report`.

    Returns:
        (the file written, the report).
    """
    from .._io import ensure_writable_dir, write_text
    from .html import render_html

    dest = report_output(runs, out)
    _check_runs(runs)
    ensure_writable_dir(dest.parent if str(dest.parent) else Path("."), option="--out")
    report = build_report(
        runs, data=data, top_losses=top_losses, command=command, on_step=on_step, on_work=on_work
    )
    if len(report.runs) > 1:
        report = split_comparison(report, dest)
    write_text(dest, render_html(report))
    return dest, report


def run_page(dest: Path, index: int, name: str) -> Path:
    """The file of run ``index``'s own report beside a comparison page ``dest``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or f"run{index}"
    return dest.with_name(f"{dest.stem}-{index + 1}-{safe}{dest.suffix}")


def split_comparison(report: Report, dest: Path) -> Report:
    """Write each run's full report beside ``dest`` and return the light comparison page.

    The page keeps the comparison, the sections every run has alike (once, e.g. the same data and
    augmentation), each run's "Run" section and a link to its own page: two full reports stacked made
    a 12.6 MB page of two lite0 runs.

    Args:
        report: A report of several runs (:func:`build_report`).
        dest: The comparison page's file; the run pages are written beside it (atomically).

    Returns:
        The comparison page's :class:`Report`.
    """
    from .._io import write_text
    from .html import render_html

    keys = [s.key for s in report.runs[0].sections]
    alike = [
        k for k in keys[_HEAD:]
        if all(any(s.key == k for s in r.sections) for r in report.runs)
        and all({s.key: s for s in r.sections}[k] == {s.key: s for s in report.runs[0].sections}[k]
                for r in report.runs[1:])
    ]
    shared = [s for s in report.runs[0].sections if s.key in alike]
    runs = []
    for k, run in enumerate(report.runs):
        page = run_page(dest, k, run.name)
        single = Report(f"cnnlab report: {run.name}", report.created, report.command, report.versions, [run])
        write_text(page, render_html(single))
        runs.append(RunReport(run.name, run.path, run.sections[:_HEAD], link=page.name))
    return replace(report, runs=runs, shared=shared)
