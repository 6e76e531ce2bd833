"""`cnnlab models` and `cnnlab summary` commands."""

from __future__ import annotations

from typing import Any

import typer

from ._app import app, print_json


def _stdout_console() -> Any:
    from rich.console import Console

    con = Console()
    return con if con.is_terminal else Console(width=200)  # piped: do not squeeze the table to 80 columns


@app.command()
def summary(
    target: str = typer.Argument(
        ..., metavar="MODEL|RUN", help="a name from `cnnlab models`, timm:<name>, a layer spec, or a run"
    ),
    size: str | None = typer.Option(
        None, "--input", help="input as CxHxW, or CxL for a 1-D model (default: the model's own)"
    ),
    json_out: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    num_classes: int | None = typer.Option(
        None, "--num-classes", help="classifier outputs (registry models)"
    ),
    depth: int | None = typer.Option(None, "--depth", help="hide table rows nested deeper than this"),
) -> None:
    """Shapes, parameters, mult-adds (torchinfo), receptive field and jump of every layer."""
    from ..options import at_least, model_input
    from ..summary import summarize_model, summary_table

    if depth is not None:
        at_least(depth, 0, "depth", " (0 shows the top-level layers)")
    result = summarize_model(target, input_size=model_input(size), num_classes=num_classes)
    if json_out:
        print_json(result.to_dict())
    else:
        _stdout_console().print(summary_table(result, max_depth=depth))


@app.command()
def models(json_out: bool = typer.Option(False, "--json", help="print the registry as JSON")) -> None:
    """The model registry: family, default input, classes and pretrained availability."""
    from ..models import list_models, model_info

    infos = [model_info(n) for n in list_models()]
    if json_out:
        print_json({"models": infos, "also": "timm:<name> for any timm model"})
        return
    from rich.table import Table

    table = Table(title="cnnlab models (also timm:<name>)")
    for col in ("Name", "Family", "Input", "Classes", "Pretrained", "Offline", "Description"):
        table.add_column(col)
    for i in infos:
        offline = "yes" if i["pretrained_offline"] else ("no" if i["pretrained"] else "--")
        table.add_row(
            i["name"],
            i["family"],
            "x".join(map(str, i["input_size"])),
            str(i["num_classes"]),
            i["pretrained"] or "--",
            offline,
            i["description"],
        )
    _stdout_console().print(table)
