"""Section 1 of a run's report: what was trained, on what, how, how long, and the command that repeats it."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from .context import RunContext, Unavailable, blocks_of
from .document import Block, Code, Facts, Section, fmt_int, fmt_seconds

if TYPE_CHECKING:
    from ..train.config import TrainConfig

#: Options that do not change what a run computes, left out of the command that reproduces it.
NOT_REPRODUCED = ("resume", "overwrite", "progress")
#: TrainConfig fields whose `cnnlab train` flag is spelled differently.
FLAG_NAMES = {"fine_tune_epochs": "--fine-tune-schedule"}
#: Packages whose versions the report lists.
VERSIONED = ("torch", "torchvision", "lightning", "timm", "numpy", "matplotlib", "scikit-learn")


def _flag(name: str) -> str:
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def option_text(value: Any) -> str:
    """An option's value as ``config.yaml`` and the command line spell it (enums by their value)."""
    return value.value if hasattr(value, "value") else str(value)


def train_command(cfg: TrainConfig) -> str:
    """The ``cnnlab train`` command line that trains ``cfg`` again (options that differ from the defaults).

    ``--data``, ``--model`` and ``--out`` (when set) are always given; ``resume``, ``overwrite`` and
    ``progress`` are left out (they do not change the numbers).

    Args:
        cfg: The run's configuration (``config.yaml``).

    Returns:
        A shell-quoted command line.
    """
    from ..train.config import TrainConfig

    default = TrainConfig()
    argv = ["cnnlab", "train"]
    for f in dataclasses.fields(cfg):
        name, value = f.name, getattr(cfg, f.name)
        if name in NOT_REPRODUCED or (name not in ("data", "model") and value == getattr(default, name)):
            continue
        if name == "pretrained" and cfg.weights is not None:
            continue  # --weights implies --pretrained
        flag = _flag(name)
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, tuple):
            for item in value:
                argv += [flag, str(item)]
        elif value is not None:
            argv += [flag, option_text(value)]
    return shlex.join(argv)


def versions() -> dict[str, str]:
    """Versions of Python, cnnlab and the packages it builds on (of the environment making the report)."""
    from .. import __version__

    out = {"python": sys.version.split()[0], "cnnlab": __version__}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _transfer(cfg: TrainConfig) -> str:
    start = f"weights {cfg.weights}" if cfg.weights else ("pretrained" if cfg.pretrained else "random init")
    detail = {
        "partial": f", last {cfg.unfreeze} block(s) trained",
        "features": f", {option_text(cfg.head)} head",
        "full": f", backbone lr x{cfg.backbone_lr_mult}",
    }.get(option_text(cfg.transfer), "")
    return f"{option_text(cfg.transfer)} ({start}{detail})"


def _trained_at(ctx: RunContext) -> str:
    weights = ctx.path / "model.safetensors"
    if not weights.is_file():
        return "unfinished (no model.safetensors)"
    return datetime.fromtimestamp(weights.stat().st_mtime).isoformat(sep=" ", timespec="seconds")


def _facts(ctx: RunContext) -> list[Block]:
    cfg = ctx.config
    items = [("model", cfg.model_name), ("data", cfg.data)]
    if ctx.data is not None:
        items.append(("data shown here", f"{ctx.data} (--data; the run trained on {cfg.data})"))
    items += [
        ("trained", _trained_at(ctx)),
        ("transfer mode", _transfer(cfg)),
        ("augmentation", cfg.augment),
        ("epochs", str(cfg.epochs)),
        (
            "optimiser",
            f"{option_text(cfg.optimizer)}, lr {cfg.lr:g}, batch size {cfg.batch_size}, "
            f"weight decay {cfg.weight_decay:g}, schedule {option_text(cfg.schedule)}",
        ),
    ]
    try:
        info = ctx.info
        p = info.get("params", {})
        items += [
            ("input", "x".join(map(str, info.get("image_size", [])))),
            ("outputs", f"{info.get('num_classes')}"),
            (
                "parameters",
                f"trainable {fmt_int(p.get('trainable', 0))}, frozen {fmt_int(p.get('frozen', 0))}"
                f", total {fmt_int(p.get('total', 0))}",
            ),
        ]
        if "best_epoch" in info:
            items.append(
                ("best epoch", f"{info['best_epoch']} (validation loss {info['best_val_loss']:.4f})")
            )
        items += [("notice", str(n)) for n in info.get("notices", [])]
    except Unavailable as exc:
        items.append(("run.json", str(exc)))
    try:
        seconds = sum(r["seconds"] for r in ctx.csv_rows("timing.csv"))
        items.append(("wall time", f"{fmt_seconds(seconds)} of training (timing.csv)"))
    except Unavailable as exc:
        items.append(("wall time", str(exc)))
    items.append(
        (
            "versions",
            ", ".join(f"{k} {v}" for k, v in versions().items())
            + " (of the environment that made this report; a run folder does not record them)",
        )
    )
    return [Facts(tuple(items))]


def _command(ctx: RunContext) -> list[Block]:
    return [Code(train_command(ctx.config), label="reproduce this run (from config.yaml)")]


def header_section(ctx: RunContext) -> Section:
    """Model, data, date, transfer mode, parameters, wall time and the command that reproduces the run."""
    return Section("run", "Run", blocks_of(lambda: _facts(ctx), lambda: _command(ctx)))
