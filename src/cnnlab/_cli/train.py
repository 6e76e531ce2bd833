"""`cnnlab train`, `cnnlab evaluate` and `cnnlab predict`.

Heavy imports (torch, Lightning, the registries) happen inside the commands; model and augmentation
names are checked against their registries there, so the choices are never listed twice.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import typer

from ..errors import CnnlabError, DataError
from ..models.surgery import HeadKind
from ..train.config import Accelerator, Optimizer, Schedule, Strategy, TrainConfig, Transfer
from ._app import app, console, print_json


def quiet_lightning() -> None:
    """Silence Lightning's banner lines and known-harmless warnings (our own messages say what matters)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*litlogger.*")


def _check_registries(model: str, augment: str) -> None:
    """Unknown model or augmentation names fail here, before the training imports."""
    from ..data.transforms import get_preset
    from ..models._registry import get_entry
    from ..models.spec import is_spec, parse_spec

    if is_spec(model):
        parse_spec(model)  # a malformed spec fails here, naming the token
    else:
        get_entry(model)
    get_preset(augment)


def check_data_exists(spec: str) -> None:
    """A data SPEC that names a path must exist: said at once, before the slow imports.

    Dataset names (``sample``, ``mnist``) are checked by the data layer; this only catches a folder or
    file that is not there, the commonest mistake, in the time ``cnnlab --help`` takes.
    """
    if spec.startswith("ucr:"):  # a dataset name inside aeon: checked by the data layer (cnnlab.data.series)
        return
    spec = spec.removeprefix("series:")  # series:FILE names a file (cnnlab.data.series)
    path = Path(spec).expanduser()
    looks_like_path = os.sep in spec or "/" in spec or spec.startswith((".", "~")) or path.suffix != ""
    if looks_like_path and not path.exists():
        raise DataError(f"{spec}: no such folder or file; pass an existing image folder or .csv file, or a "
                        "dataset name such as sample", param="data")


def cli_text(text: str) -> str:
    """A library message (options in backticks, ``lower `lr```) as the CLI says it (``lower --lr``)."""
    return CnnlabError(text).cli_message()


def _explicit(ctx: typer.Context) -> set[str]:
    """Parameters the user typed (not defaults)."""
    # Compared by name: typer may run its own vendored copy of click's ParameterSource enum.
    sources = {name: ctx.get_parameter_source(name) for name in ctx.params}
    return {name for name, source in sources.items() if getattr(source, "name", "") == "COMMANDLINE"}


@app.command()
def train(
    ctx: typer.Context,
    data: str = typer.Option(
        "sample", "--data", help="sample | mnist | fashion-mnist | FOLDER | CSV | ucr:NAME | series:FILE"
    ),
    model: str | None = typer.Option(
        None, "--model", show_default=False,
        help="a name from `cnnlab models`, timm:<name>, or a layer spec string [default: one that fits the "
             "data: mnist_cnn for sample, mnist, fashion-mnist; cats_cnn for photo folders and CSVs]",
    ),
    pretrained: bool = typer.Option(False, "--pretrained", help="start from the model's pretrained weights"),
    weights: Path | None = typer.Option(
        None, "--weights", help="local .pth/.safetensors weights (implies --pretrained)"
    ),
    transfer: Transfer = typer.Option(
        Transfer.SCRATCH, "--transfer", help="how much of a pretrained net trains"
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", show_default=False, help="[default: 10; 150 on series data (ucr:, series:)]"
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", show_default=False, help="[default: 64; 16 on series data]"
    ),
    lr: float | None = typer.Option(
        None, "--lr", show_default=False,
        help="learning rate (of the head when transferring) [default: the model's recommended one "
             "(cats_cnn: 3e-4), else 1e-3]",
    ),
    backbone_lr_mult: float = typer.Option(0.1, "--backbone-lr-mult", help="backbone lr = lr x this"),
    weight_decay: float = typer.Option(0.0, "--weight-decay"),
    optimizer: Optimizer = typer.Option(Optimizer.ADAM, "--optimizer"),
    schedule: Schedule | None = typer.Option(
        None, "--schedule", show_default=False, help="[default: none; cosine on series data]"
    ),
    augment: str = typer.Option(
        "none", "--augment", help="augmentation preset (registry: cnnlab.data.transforms)"
    ),
    img_size: int | None = typer.Option(None, "--img-size", help="square size images are resized to"),
    val_split: float = typer.Option(0.2, "--val-split", help="held-out fraction when the data has no val/"),
    seed: int = typer.Option(0, "--seed"),
    deterministic: bool = typer.Option(True, "--deterministic/--no-deterministic"),
    devices: str = typer.Option("1", "--devices", help="devices per node (a number or 'auto')"),
    num_nodes: int = typer.Option(1, "--num-nodes"),
    strategy: Strategy = typer.Option(Strategy.AUTO, "--strategy"),
    accelerator: Accelerator = typer.Option(Accelerator.AUTO, "--accelerator"),
    out: Path | None = typer.Option(None, "--out", help="run folder (default runs/<model>-<data>)"),
    resume: bool = typer.Option(
        False, "--resume", help="continue the run in --out from checkpoints/last.ckpt"
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="folder with the IDX files (else $CNNLAB_DATA_DIR)"
    ),
    limit: int | None = typer.Option(None, "--limit", help="use only about N images per split (quick runs)"),
    workers: int = typer.Option(0, "--workers", help="batches prepared ahead in the background"),
    unfreeze: int = typer.Option(1, "--unfreeze", help="--transfer partial: train the last N blocks"),
    unfreeze_layers: list[str] = typer.Option(
        [], "--unfreeze-layers", help="--transfer partial: blocks to train"
    ),
    train_bn: bool = typer.Option(False, "--train-bn", help="frozen batch-norm layers still update"),
    head: HeadKind = typer.Option(HeadKind.LINEAR, "--head", help="--transfer features: the classifier head"),
    fine_tune_schedule: int = typer.Option(0, "--fine-tune-schedule", help="K epochs frozen, then unfreeze"),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="embedding cache folder (--transfer features)"
    ),
    channels_last: bool | None = typer.Option(
        None, "--channels-last/--no-channels-last", help="NHWC convolutions [default: on for the CPU]"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train a model on a dataset and write a run folder (checkpoints, metrics, curves, weights)."""
    options: dict[str, Any] = dict(ctx.params)
    options["fine_tune_epochs"] = options.pop("fine_tune_schedule")
    options["unfreeze_layers"] = tuple(options["unfreeze_layers"])
    for key in ("weights", "out", "data_dir", "cache_dir"):
        options[key] = str(options[key]) if options[key] is not None else None
    explicit = _explicit(ctx)
    if "fine_tune_schedule" in explicit:
        explicit.add("fine_tune_epochs")
    check_data_exists(options["data"])  # before any slow import: as fast as `cnnlab --help`
    from ..train.preflight import check_transfer
    from ..train.runfolder import resume_config

    # With --resume, the run continues as configured; only options typed now override it (fit checks).
    cfg = resume_config(TrainConfig(**options), explicit)
    check_transfer(cfg)
    from .._io import ensure_writable_dir

    ensure_writable_dir(cfg.run_dir, option="--out")  # before any slow import
    _check_registries(cfg.model_name, cfg.augment)
    quiet_lightning()
    from ..train.run import fit

    def on_setup(info: dict[str, Any]) -> None:
        p = info["params"]
        console.print(
            f"[bold]{cfg.model}[/] on [bold]{cfg.data}[/]: {info['num_classes']} output(s), "
            f"input {'x'.join(map(str, info['image_size']))}; parameters trainable {p['trainable']:,}, "
            f"frozen {p['frozen']:,} ({cfg.transfer.value}); run folder {cfg.run_dir}"
        )
        if "model" not in explicit and not cfg.resume:
            console.print(f"note: model {cfg.model}, chosen to fit this data; choose another with --model")
        for notice in info.get("notices", []):
            console.print(f"note: {cli_text(notice)}", markup=False, highlight=False)

    result = fit(cfg, on_setup=on_setup)
    if result.global_rank == 0:
        console.print(result.summary(), markup=False, highlight=False)


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="a run folder"),
    data: str | None = typer.Option(
        None, "--data", help="evaluate on this SPEC's val split (default: the run's)"
    ),
    json_out: bool = typer.Option(False, "--json", help="print the result as JSON"),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
    top_losses: int = typer.Option(10, "--top-losses", min=0, help="how many highest-loss images to list"),
) -> None:
    """Accuracy, per-class precision/recall/F1, confusion matrix (PNG + JSON) and the top losses of a run.

    Writes evaluation.json, confusion.png and top_losses.png (the highest-loss images with their true and
    predicted classes, probabilities and Grad-CAM) into the run folder.
    """
    from .._io import save_figure, write_json
    from ..report.plots import confusion_figure
    from ..train.evaluate import evaluate as run_evaluate
    from ..train.evaluate import load_eval_data
    from ..train.runfolder import load_run

    loaded = load_run(run)
    dataset, spec = load_eval_data(loaded, data)
    result = run_evaluate(loaded, dataset, spec=spec, batch_size=batch_size, top_losses=top_losses)
    doc = {**result.to_dict(), "weights": "trained"}  # a run folder: the weights it learned
    images = len(loaded.image_size) == 3  # the gallery draws images; series have their CAM figure (explain)
    gallery_path = run / "top_losses.png" if result.top_losses and images else None
    try:
        write_json(run / "evaluation.json", {"data": spec, **doc})
        save_figure(run / "confusion.png", confusion_figure(result.confusion, result.classes))
        where = f"{run / 'evaluation.json'} and {run / 'confusion.png'}"
        if gallery_path is not None:
            from ..interpret.top_losses import top_loss_gallery
            from ..report.evaluation_plots import top_losses_figure

            save_figure(gallery_path, top_losses_figure(top_loss_gallery(loaded, dataset, result)))
    except OSError as exc:
        where, gallery_path = f"nowhere ({run} is not writable: {exc.strerror})", None
    if json_out:
        print_json(doc)
        return
    from rich.table import Table

    table = Table(title=f"{run} on {spec}: accuracy {result.accuracy:.2%}, loss {result.loss:.4f}")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, m in result.per_class.items():
        table.add_row(
            name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"])
        )
    console.print(table)
    for t in result.top_losses[:5]:
        where_item = t.get("path", f"#{t.get('index')}")
        console.print(
            f"top loss {t['loss']:.3f}: {where_item} (label {t['label']}, predicted {t['predicted']})"
        )
    console.print(f"Confusion matrix and JSON written to {where}.")
    if gallery_path is not None:
        console.print(f"The top losses, drawn with their classes and Grad-CAM: {gallery_path}.")


@app.command()
def predict(
    inputs: list[str] = typer.Argument(
        ..., metavar="RUN|IMAGE... IMAGE...", help="A run folder then images (files or folders), or --model."
    ),
    model: str | None = typer.Option(None, "--model", help="A registry model (pretrained when offline)."),
    top_k: int = typer.Option(5, "--top-k", help="classes per image"),
    json_out: bool = typer.Option(False, "--json", help="print the predictions as JSON"),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
) -> None:
    """Top-k classes of images (files or folders), batched, preprocessed as the model's own data.

    --json prints [{path, predictions: [{class, probability}], weights}]; weights is trained, pretrained or
    random (a model with random weights also gets a warning: its predictions mean nothing).
    """
    from ..errors import CnnlabError
    from ..train.evaluate import image_files
    from ..train.evaluate import predict as run_predict
    from .interpret import load_source, split_inputs

    run, images = split_inputs(inputs, model)
    files = image_files(images)  # missing files fail before the model loads
    src = load_source(run, model)
    skipped: list[tuple[str, str]] = []
    preds = run_predict(src, files, top_k=top_k, batch_size=batch_size, skipped=skipped)
    for path, reason in skipped:  # on stderr: --json stdout stays machine-readable
        console.print(f"skipped {path}: {reason}", markup=False, highlight=False, soft_wrap=True)
    if not preds:
        raise CnnlabError(f"no readable image among {len(files)} file(s); see the skipped files above")
    if json_out:
        print_json([{**p.to_dict(), "weights": src.weights} for p in preds])
        return
    for p in preds:
        ranked = ", ".join(f"{c} {prob:.1%}" for c, prob in p.top_k)
        console.print(f"{p.path}: {ranked}")
