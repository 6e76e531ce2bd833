"""Progress of long library work on stderr: a rich bar on a terminal, plain lines in a log.

On a terminal, :func:`progress_bar` draws a transient rich bar. Elsewhere (a pipe, a log file, CI) a bar
would be redrawn into the log, so it prints one plain line when the work starts and one at each further
~10% (``decoding cats-vs-dogs: 40% (320/800)``), and nothing at all for work that never reports (a warm
cache). :func:`phase_line` says that a phase without counts begins (``loading ...``, ``serving ...``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

#: ``on_step(what, steps done, steps in all)``.
StepFn = Callable[[str, int, int], None]
#: Percent steps between two plain lines.
STEP = 10


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (where a bar redraws in place), as rich decides it."""
    from rich.console import Console

    return Console(stderr=True).is_terminal


def phase_line(text: str, *, enabled: bool = True) -> None:
    """One line on stderr saying that a phase begins (flushed at once: a log shows it as it happens)."""
    if enabled:
        print(text, file=sys.stderr, flush=True)


def plain_lines(description: str) -> Callable[[int, int], None]:
    """``update(done, total)`` printing a line when work starts and at each further ~10% (for logs)."""
    state: dict[str, float] = {"next": 0, "total": -1, "t0": time.perf_counter()}

    def update(done: int, total: int) -> None:
        if total != state["total"]:  # a new piece of work (the next split) under the same description
            state.update(next=0, total=total, t0=time.perf_counter())
        pct = 100 * done // total if total else 100
        if pct < state["next"]:
            return
        if state["next"] == 0:
            print(f"{description} ...", file=sys.stderr, flush=True)
        if done and pct >= max(state["next"], STEP):
            seconds = time.perf_counter() - state["t0"]
            print(f"{description}: {pct}% ({done}/{total}, {seconds:.1f} s)", file=sys.stderr, flush=True)
        state["next"] = (pct // STEP + 1) * STEP

    return update


@contextlib.contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A progress reporter on stderr for work that reports ``(done, total)``; ``None`` if disabled.

    A rich bar on a terminal; in a log, one plain line at the start and one per ~10%.

    Example:
        >>> with progress_bar("embeddings: train") as update:
        ...     emb = compute_embeddings(model, ds, mean=m, std=s, progress=update)
    """
    if not enabled:
        yield None
        return
    if not stderr_is_terminal():
        yield plain_lines(description)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def step_lines(prefix: str) -> tuple[Callable[[str, int, int], None], Callable[[int, int], None]]:
    """``(on_step, on_work)`` for a log: one line per step (``report: run/a: data (2/7)``), and the work
    inside a step (decoding, gradient ascent) as :func:`plain_lines`."""
    work: dict[str, Callable[[int, int], None]] = {}

    def on_step(what: str, done: int, total: int) -> None:
        phase_line(f"{prefix}: {what} ({done}/{total})")
        work["now"] = plain_lines(f"{prefix}: {what}: working")

    def on_work(done: int, total: int) -> None:
        work.setdefault("now", plain_lines(f"{prefix}: working"))(done, total)

    return on_step, on_work


@contextlib.contextmanager
def step_progress(prefix: str) -> Iterator[tuple[StepFn, Callable[[int, int], None]]]:
    """``(on_step, on_work)`` for work in named steps (the report's sections): a rich bar with the step and
    the work inside it on a terminal, :func:`step_lines` in a log."""
    if not stderr_is_terminal():
        yield step_lines(prefix)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(f"{prefix}: {{task.description}}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        steps = bar.add_task("loading", total=None)
        work = bar.add_task("", total=None, visible=False)

        def on_step(what: str, done: int, total: int) -> None:
            bar.update(steps, description=what, completed=done, total=total)
            bar.update(work, visible=False, completed=0)

        def on_work(done: int, total: int) -> None:
            bar.update(work, description="  working", completed=done, total=total, visible=True)

        yield on_step, on_work
