"""Section 0 of a run's report, first on the page: the verdict (is the result good, and what to do next).

The verdict is :mod:`cnnlab.train.verdict`'s, computed once in the library: here from the run's
``metrics.csv``, the report's own evaluation of the kept weights and the run's data. When the data is not
reachable, the verdict recorded in the run folder (``evaluation.json``, else ``run.json``) is shown.
"""

from __future__ import annotations

from typing import Any

from .context import RunContext, Unavailable, attempt
from .document import Block, Facts, Missing, Section


def run_verdict_of(ctx: RunContext) -> dict[str, Any]:
    """The verdict of ``ctx``'s run as :meth:`cnnlab.train.verdict.Verdict.to_dict` gives it.

    Raises:
        Unavailable: Neither the evaluation nor a recorded verdict is there.
    """
    from ..train.verdict_run import read_verdict, run_verdict

    def compute() -> dict[str, Any]:
        try:
            evaluation = ctx.evaluation
        except Unavailable:
            recorded = read_verdict(ctx.path)
            if recorded is None:
                raise
            return recorded
        own = ctx.data is None
        train = ctx.bundle.train if own else None
        return run_verdict(ctx.loaded, evaluation, train=train, val=ctx.val if own else None).to_dict()

    return ctx._once("verdict", compute)


def headline_of(verdict: dict[str, Any]) -> str:
    """``good: 99.0% validation accuracy (chance 50.0%)`` from a verdict's dict."""
    line = str(verdict.get("line", ""))
    head = line.split("; ", 1)[0]
    return head.removeprefix("verdict: ") or str(verdict.get("status", ""))


def _blocks(ctx: RunContext) -> list[Block]:
    verdict = run_verdict_of(ctx)
    items = [("verdict", headline_of(verdict))]
    for f in verdict.get("findings", []):
        text = f"{f['message']}; fix: {f['fix']}" if f.get("fix") else str(f["message"])
        items.append((str(f["check"]).replace("_", " "), text))
    if len(items) == 1:
        items.append(("findings", "none: not at chance, no overfitting, leakage, imbalance or confident "
                      "errors found"))
    return [Facts(tuple(items))]


def verdict_section(ctx: RunContext) -> Section:
    """The verdict and each finding with its fix (one line when nothing to judge it by is there)."""
    blocks = attempt(lambda: _blocks(ctx))
    if blocks and isinstance(blocks[0], Missing):
        blocks = [Missing(f"no verdict: {blocks[0].reason}")]
    return Section("verdict", "Verdict", blocks)
