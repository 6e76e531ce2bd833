"""Helpers of the trust tests (imported by them and by ``conftest.py``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: A small, quick run: the embedded sample, 64 images per split, 2 epochs.
TINY = {"data": "sample", "model": "mnist_cnn", "limit": 64, "batch_size": 32, "epochs": 2, "progress": False}


def cnnlab(*args: str, timeout: float = 600, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m cnnlab ARGS`` in a fresh process (what a user types)."""
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, timeout=timeout,
        cwd=cwd or ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "400", **(env or {})},
    )


def one_error_line(stderr: str) -> str:
    """The single ``error:`` line of a failed command (asserting there is exactly one, no traceback)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    """``cnnlab ARGS`` in this process (click's CliRunner: seconds faster than :func:`cnnlab`).

    A traceback shows as ``exit_code`` 1 with ``exception`` set; a refusal is exit 2 with one ``error:`` line.
    """
    from typer.testing import CliRunner

    from cnnlab.cli import app

    return CliRunner().invoke(app, list(args), env=env)


def refused(result: Any) -> str:
    """The one ``error:`` line of an in-process run that must be refused (exit 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, repr(result.exception), result.stderr[-3000:])
    return one_error_line(result.stderr)


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_QUOTED_COMMAND = re.compile(r"`cnnlab [^`]*`")


def command_options(name: str) -> set[str]:
    """The flags ``cnnlab NAME --help`` lists (``--x/--no-x`` both), and ``--help``."""
    from typer.main import get_command

    from cnnlab.cli import app

    command = get_command(app).commands[name]  # type: ignore[attr-defined]
    flags = {"--help"}
    for param in command.params:
        flags |= {o for o in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
                  if o.startswith("--")}
    return flags


def foreign_flags(name: str, line: str) -> set[str]:
    """The flags an error line of ``cnnlab NAME`` names that the command does not have (a flag inside a
    quoted command, ```cnnlab train --weights FILE```, is that command's)."""
    return set(_FLAG.findall(_QUOTED_COMMAND.sub("", line))) - command_options(name)
