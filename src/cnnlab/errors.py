"""User-facing errors.

A :class:`CnnlabError` carries one line that names the problem and the fix. Library messages speak in
library terms: when the cause is one argument, ``param`` names it as the library spells it
(``"epochs"``, ``"weights"``) and ``str(error)`` reads ``"epochs must be at least 1"``. The CLI prints the
same message with the flag the user typed (``"--epochs must be at least 1"``, see :func:`as_flag`),
without a traceback, and exits with status 2.

Other options a message refers to (in its fix, say) are written in backticks as the library names them
(a message reading "lower `lr`"); the CLI prints each as its flag ("lower --lr"). Backticks around
anything that is not a single lower-case identifier (such as a command) are left alone.

A message shared by several commands may offer a fix that names an option only some of them have: it is
written in square brackets, ``"set CNNLAB_DATA_DIR[, or pass `data_dir` DIR]"``. The library's text
keeps it (without the brackets); the CLI keeps it only for a command that has every option it names
(:meth:`CnnlabError.cli_message` with ``options``), so that no hint names an option the command lacks.

Errors whose cause is a bad argument value are also :class:`ValueError` s (:class:`ArgumentError` and
its kin), so ``except ValueError`` works for library callers.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Iterable

_OPTION_REF = re.compile(r"`([a-z][a-z0-9_]*)`")
#: A part of a message that names options only some commands have: ``[, or add `download`]``.
_ALTERNATIVE = re.compile(r"\[([^\[\]]*`[a-z][a-z0-9_]*`[^\[\]]*)\]")


class CnnlabError(Exception):
    """A problem the user can fix; the message names the file/argument and the fix.

    Args:
        message: What is wrong and how to fix it; when ``param`` is given, the text that follows its
            name (``"must be at least 1"``, ``"'x.pth': no such file"``, ``": no checkpoint"``; a
            leading ``:``, ``,``, ``;`` or ``=`` follows the name without a space).
        param: The argument at fault, as the library names it (a keyword argument or a
            ``TrainConfig`` field), or None.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def __str__(self) -> str:
        text = _ALTERNATIVE.sub(r"\1", self.message)
        return f"{self.param}{_sep(text)}{text}" if self.param else text

    def cli_message(self, flags: dict[str, str] | None = None, options: Collection[str] | None = None) -> str:
        """The message as the CLI prints it: ``param`` spelled as its flag (``--fine-tune-schedule``).

        Args:
            flags: Extra ``{param: flag}`` spellings of the command.
            options: The command's flags; a bracketed alternative naming an option that is not among them
                is left out (None: every alternative is kept).
        """

        def alternative(m: re.Match[str]) -> str:
            named = {as_flag(ref, flags) for ref in _OPTION_REF.findall(m.group(1))}
            return m.group(1) if options is None or named <= set(options) else ""

        kept = _ALTERNATIVE.sub(alternative, self.message)
        text = _OPTION_REF.sub(lambda m: as_flag(m.group(1), flags), kept)
        return f"{as_flag(self.param, flags)}{_sep(text)}{text}" if self.param else text


def _sep(message: str) -> str:
    return "" if message[:1] in (":", ",", ";", "=") else " "


class ArgumentError(CnnlabError, ValueError):
    """A bad argument value: out of range, an unknown choice or name, a malformed spec."""


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
        return self.message


class DataArgumentError(DataError, ArgumentError):
    """A bad data argument value (an unknown preset, a bad split fraction)."""


class ModelArgumentError(ModelError, ArgumentError):
    """A bad model argument value (an unknown model or layer name, a malformed input size)."""


#: Library parameter names whose CLI flag is not simply ``--`` + the name with dashes.
FLAG_NAMES: dict[str, str] = {"fine_tune_epochs": "--fine-tune-schedule", "input_size": "--input"}


def did_you_mean(name: str, choices: Iterable[str], *, cutoff: float = 0.5) -> str:
    """``"did you mean a, b? "`` for the choices closest to ``name`` (difflib), or ``""`` when none is close.

    Every "unknown name" message starts its fix with this, so a typo always gets a suggestion.
    """
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=cutoff)
    return f"did you mean {', '.join(close)}? " if close else ""


def as_flag(param: str, flags: dict[str, str] | None = None) -> str:
    """The CLI flag of a library parameter: ``"unfreeze_layers"`` -> ``"--unfreeze-layers"``.

    Args:
        param: The library's name of the argument.
        flags: Extra ``{param: flag}`` spellings of one command (checked before :data:`FLAG_NAMES`).
    """
    names = {**FLAG_NAMES, **(flags or {})}
    return names.get(param, "--" + param.replace("_", "-"))
