"""User-facing errors.

A :class:`CnnlabError` carries one line that names the problem and the fix. The CLI prints it
without a traceback and exits with status 2; library callers can catch it like any exception.
"""

from __future__ import annotations

import os


class CnnlabError(Exception):
    """A problem the user can fix; the message names the file/argument and the fix."""


class DataError(CnnlabError):
    """Bad or missing data (folder, file, SPEC)."""


class ModelError(CnnlabError):
    """Unknown model, unusable layer, input too small, missing weights."""


class TrainingError(CnnlabError):
    """Training cannot start or had to stop (unwritable --out, NaN loss, ...)."""


class DiskFullError(CnnlabError, OSError):
    """A write failed because the disk or the user's quota is full (ENOSPC, EDQUOT).

    The previous file is left intact and the temporary file removed. It is also an :class:`OSError`
    carrying the errno, so code that already handles failed writes (``except OSError``) keeps working.
    """

    def __init__(self, message: str, *, path: str, errno_code: int) -> None:
        super().__init__(message)
        self.errno = errno_code
        self.strerror = os.strerror(errno_code)
        self.filename = path

    def __str__(self) -> str:
        return str(self.args[0])
