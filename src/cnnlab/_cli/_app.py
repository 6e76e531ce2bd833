"""The Typer application and the helpers every command shares.

User errors (:class:`cnnlab.errors.CnnlabError`) and click's usage errors (an unknown option, a value
of the wrong type, a missing argument) become one line on stderr and exit status 2, with no traceback;
everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from ..errors import CnnlabError

if TYPE_CHECKING:
    from typer._click import ClickException as _ClickException
    from typer._click import Context, echo
    from typer._click.exceptions import UsageError

    from ..source import ModelSource
else:
    try:  # typer >= 0.2x runs its own vendored click: its exceptions are the ones typer's main() handles
        from typer._click import ClickException as _ClickException
        from typer._click import Context, echo
        from typer._click.exceptions import UsageError
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import ClickException as _ClickException
        from click import Context, UsageError, echo

#: Progress bars, tables and messages go to stderr so that ``--json`` stdout stays machine-readable.
#: Messages are never wrapped at the console width (soft wrap): piped to a file, a path or a number stays
#: on one line; rules and tables still fit the width.
console = Console(stderr=True, soft_wrap=True)


class UserError(_ClickException):
    """A :class:`CnnlabError` as click sees it: printed as one line, exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        echo(f"error: {self.format_message()}", err=True)


def usage_line(exc: Any) -> str:
    """Click's usage error in one line (click prints usage, a hint and the error on three)."""
    text = " ".join(str(exc.format_message()).split()).rstrip(".").replace(": Value error, ", ": ")
    text = text[:1].lower() + text[1:]
    ctx = getattr(exc, "ctx", None)
    return f"{text} (see `{ctx.command_path} --help`)" if ctx is not None else text


class _Group(TyperGroup):
    def list_commands(self, ctx: Context) -> list[str]:
        from ..commands import in_work_order

        return in_work_order(super().list_commands(ctx))

    def format_commands(self, ctx: Context, formatter: Any) -> None:
        from ..commands import command_line

        shown = [(n, c) for n in self.list_commands(ctx) if (c := self.get_command(ctx, n)) and not c.hidden]
        with formatter.section("Commands"):
            formatter.write_dl([(name, command_line(name, cmd.help or "")) for name, cmd in shown])

    def _options(self, ctx: Context) -> set[str] | None:
        """The flags of the command being run (None before one is chosen)."""
        command = self.commands.get(ctx.invoked_subcommand or "")
        if command is None:
            return None
        return {o for p in command.params
                for o in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]}

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:  # `cnnlab --bad`: the group's own options
            raise UserError(usage_line(exc)) from None

    def invoke(self, ctx: Context) -> Any:
        from .._perf import tune_allocator

        tune_allocator()  # every command allocates tensors; see cnnlab._perf
        try:
            return super().invoke(ctx)
        except CnnlabError as exc:  # a hint naming an option this command lacks is left out (errors.py)
            raise UserError(exc.cli_message(options=self._options(ctx))) from None
        except UsageError as exc:  # a command's options: parsed here, when the command is invoked
            raise UserError(usage_line(exc)) from None


app = typer.Typer(
    cls=_Group,
    name="cnnlab",
    help="From a folder of images to a trained, explained convolutional network.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (the stable ``--json`` contract): always valid JSON (null for NaN)."""
    from ..values import json_safe

    sys.stdout.write(json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def load_source(run: str | None, model_name: str | None) -> ModelSource:
    """The model behind ``RUN`` or ``--model NAME``, its notices and random-weights warning printed."""
    from ..source import resolve_run_or_model

    src = resolve_run_or_model(run, model_name)
    for line in src.remarks:
        console.print(line, markup=False, highlight=False)
    return src
