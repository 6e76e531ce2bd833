"""`cnnlab train`, `cnnlab evaluate` and `cnnlab predict`.

Heavy imports (torch, Lightning, the registries) happen inside the commands; model and augmentation
names are checked against their registries there, so the choices are never listed twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..errors import CnnlabError
from ..export import ExportFormat
from ..models.surgery import HeadKind
from ..train.config import Accelerator, Logger, Optimizer, Schedule, Strategy, TrainConfig, Transfer
from ._app import app, console, load_source, print_json


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
             "data: mnist_cnn for sample, mnist, fashion-mnist and small grayscale images; for photo folders "
             "and CSVs efficientnet_lite0, pretrained, --transfer features]",
    ),
    pretrained: bool = typer.Option(False, "--pretrained", help="start from the model's pretrained weights"),
    weights: Path | None = typer.Option(
        None, "--weights", help="local .pth/.safetensors weights (implies --pretrained)"
    ),
    transfer: Transfer = typer.Option(
        Transfer.SCRATCH, "--transfer", help="how much of a pretrained net trains"
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="[default: 10; 150 on series data]"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="[default: 64; 16 on series data]"),
    lr: str | None = typer.Option(
        None, "--lr", show_default=False, metavar="LR|find",
        help="learning rate (of the head when transferring), or find: Lightning's learning-rate finder "
             "chooses it (lr_find.png) [default: the model's recommended one (cats_cnn: 3e-4), else 1e-3]",
    ),
    backbone_lr_mult: float = typer.Option(0.1, "--backbone-lr-mult", help="backbone lr = lr x this"),
    weight_decay: float = typer.Option(0.0, "--weight-decay"),
    optimizer: Optimizer = typer.Option(Optimizer.ADAM, "--optimizer"),
    schedule: Schedule | None = typer.Option(None, "--schedule", help="[default: none; cosine on series]"),
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
    overwrite: bool = typer.Option(
        False, "--overwrite", help="replace the run in --out (without it or --resume, a run there is refused)"
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
    logger: Logger = typer.Option(Logger.CSV, "--logger", help="tensorboard: also OUT/tensorboard/ events"),
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
    from ..options import check_data_exists

    check_data_exists(options["data"])  # before any slow import: as fast as `cnnlab --help`
    from ..runfolder.folder import resume_config
    from ..train.preflight import check_names, check_transfer

    # With --resume, the run continues as configured; only options typed now override it (fit checks).
    cfg = resume_config(TrainConfig(**options), explicit)
    check_transfer(cfg)
    from .._io import ensure_writable_dir

    ensure_writable_dir(cfg.run_dir, option="--out")  # before any slow import
    check_names(cfg)  # an unknown model or preset, a malformed spec: before the data is decoded
    from ..train.run import fit, quiet_lightning

    quiet_lightning()

    def on_setup(info: dict[str, Any]) -> None:
        p = info["params"]
        console.print(
            f"[bold]{cfg.model}[/] on [bold]{cfg.data}[/]: {info['num_classes']} output(s), "
            f"input {'x'.join(map(str, info['image_size']))}; parameters trainable {p['trainable']:,}, "
            f"frozen {p['frozen']:,} ({cfg.transfer.value}); run folder {cfg.run_dir}"
        )
        if "model" not in explicit and not cfg.resume:
            from ..train.defaults import default_choice

            reason = CnnlabError(default_choice(cfg.data, cfg.img_size).reason).cli_message()
            console.print(f"note: {reason}; choose another with --model", markup=False, highlight=False)
        for notice in info.get("notices", []):
            console.print(f"note: {CnnlabError(notice).cli_message()}", markup=False, highlight=False)

    result = fit(cfg, on_setup=on_setup)
    if result.global_rank == 0:
        console.print(result.summary(), markup=False, highlight=False)


@app.command()
def export(
    run: Path = typer.Argument(..., help="a run folder"),
    fmt: ExportFormat = typer.Option(ExportFormat.ONNX, "--format", help="the file format"),
    out: Path | None = typer.Option(None, "--out", help="file [default: RUN/model.onnx or .torchscript.pt]"),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="any batch size (else batch 1)"),
) -> None:
    """Write the model and its preprocessing (in the file and FILE.json), read it back with onnxruntime or
    torch.jit.load: above a |logit difference| of 1e-4 from PyTorch's on 20 validation images, nothing is
    written."""
    from ..export import export_run

    console.print(export_run(run, fmt=fmt, out=out, dynamic_batch=dynamic_batch).summary(), markup=False)


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
    from ..report.measures import evaluation_files

    done = evaluation_files(run, data=data, batch_size=batch_size, top_losses=top_losses)
    if json_out:
        print_json(done.record)
        console.print(done.verdict.line(), markup=False, highlight=False)
        return
    console.print(done.table(run))
    for line in done.closing_lines():
        console.print(line, markup=False, highlight=False)


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
    from ..options import run_and_images
    from ..train.evaluate import predict_inputs

    run, images = run_and_images(inputs, model, files_first=True)  # missing files: before the model loads
    src = load_source(run, model)
    skipped: list[tuple[str, str]] = []
    preds = predict_inputs(src, images, top_k=top_k, batch_size=batch_size, skipped=skipped)
    for path, reason in skipped:  # on stderr: --json stdout stays machine-readable
        console.print(f"skipped {path}: {reason}", markup=False, highlight=False, soft_wrap=True)
    if not preds:
        raise CnnlabError(f"no readable image among the {len(skipped)} given; see the skipped files above")
    if json_out:
        print_json([{**p.to_dict(), "weights": src.weights} for p in preds])
        return
    for p in preds:
        ranked = ", ".join(f"{c} {prob:.1%}" for c, prob in p.top_k)
        console.print(f"{p.path}: {ranked}")
