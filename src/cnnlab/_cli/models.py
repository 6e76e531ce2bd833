"""`cnnlab models` and `cnnlab summary` commands."""

from __future__ import annotations

import math
import re
from typing import Any

import typer

from ..errors import ModelArgumentError
from ._app import app, print_json


def _stdout_console() -> Any:
    from rich.console import Console

    con = Console()
    return con if con.is_terminal else Console(width=200)  # piped: do not squeeze the table to 80 columns


def _parse_input(text: str) -> tuple[int, ...]:
    if not re.fullmatch(r"\d+(x\d+){1,2}", text.strip().lower()):
        raise ModelArgumentError(f"{text!r}: write it as CxHxW, e.g. 3x224x224, or CxL for a 1-D model, "
                                 "e.g. 1x128", param="input_size")
    dims = tuple(int(v) for v in text.strip().lower().split("x"))
    if min(dims) < 1:
        raise ModelArgumentError(f"{text!r}: every dimension must be at least 1", param="input_size")
    return dims


def _check_summary_memory(model: Any, dims: tuple[int, ...], name: str) -> None:
    """The summary runs the model once on a zero image: refuse one over the memory budget first."""
    from ..memory import check_memory, dry_forward

    probe = dry_forward(model, dims)
    size = "x".join(map(str, dims))
    check_memory(probe.activation_bytes + 4 * math.prod(dims), f"summarising {name} on a {size} input",
                 "use a smaller `input_size`")


def _check_head_memory(target: str, num_classes: int, dims: tuple[int, ...] | None) -> None:
    """``--num-classes 1000000000`` would allocate the classifier: build it on the meta device first."""
    from pathlib import Path

    import torch

    from ..memory import check_memory
    from ..models import create_model
    from ..models.spec import build_from_spec
    from ..source import is_spec

    if Path(target).exists():  # a run folder or weights file: its own outputs
        return
    with torch.device("meta"):  # the architecture alone: no memory, no class names
        if is_spec(target):
            model = build_from_spec(target, head="gap", input_size=dims, num_classes=num_classes)
        else:
            model = create_model(target, num_classes=num_classes)
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    check_memory(nbytes, f"{target} with {num_classes:,} outputs", "give fewer `num_classes`")


@app.command()
def summary(
    target: str = typer.Argument(
        ..., metavar="MODEL|RUN", help="a name from `cnnlab models`, timm:<name>, a layer spec, or a run"
    ),
    input_size: str | None = typer.Option(
        None, "--input", help="input as CxHxW, or CxL for a 1-D model (default: the model's own)"
    ),
    json_out: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    num_classes: int | None = typer.Option(
        None, "--num-classes", help="classifier outputs (registry models)"
    ),
    depth: int | None = typer.Option(None, "--depth", help="hide table rows nested deeper than this"),
) -> None:
    """Shapes, parameters, mult-adds (torchinfo), receptive field and jump of every layer."""
    from ..source import resolve_model
    from ..summary import summarize, summary_table

    if num_classes is not None and num_classes < 1:
        raise ModelArgumentError(f"{num_classes}: a classifier needs at least 1 output", param="num_classes")
    if depth is not None and depth < 0:
        raise ModelArgumentError(f"{depth}: must be 0 or more (0 shows the top-level layers)", param="depth")
    dims = _parse_input(input_size) if input_size else None
    if num_classes is not None:
        _check_head_memory(target, num_classes, dims)
    src = resolve_model(target, pretrained=False, num_classes=num_classes, input_size=dims)  # type: ignore[arg-type]
    name = f"{src.run.config.model} ({src.label})" if src.run is not None else src.label
    _check_summary_memory(src.model, dims or src.image_size, name)
    result = summarize(src.model, dims or src.image_size, model_name=name)
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
