"""User-facing errors.

A :class:`CnnlabError` carries one line that names the problem and the fix. The CLI prints it
without a traceback and exits with status 2; library callers can catch it like any exception.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """A problem the user can fix; the message names the file/argument and the fix."""


class DataError(CnnlabError):
    """Bad or missing data (folder, file, SPEC)."""


class ModelError(CnnlabError):
    """Unknown model, unusable layer, input too small, missing weights."""


class TrainingError(CnnlabError):
    """Training cannot start or had to stop (unwritable --out, NaN loss, ...)."""
