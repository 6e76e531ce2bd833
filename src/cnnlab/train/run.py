"""``fit(config)``: a dataset and a model in, a complete run folder out (:mod:`.runfolder` lists it).

:func:`fit` is a short sequence of named steps, each a function that can be read alone: the checks of
:mod:`.preflight` (the model's recommended options, devices, a frozen random backbone, whether the
model fits the data's images and the memory budget), :func:`prepare_run_dir` (an unwritable ``--out``
or a bad ``--resume`` fails before any work; what a killed run left half-written is removed),
:func:`load_training_data` (sized for the starting weights), :func:`~cnnlab.train.recipe.build_model`
(the same recipe ``load_run`` uses), :func:`training_setup` (freezing policy, normalisation, the data
module: images, or cached embeddings for ``--transfer features``, and the Lightning module),
:func:`build_trainer`, :func:`run_trainer` and :func:`finish_run` (export of the best weights). A run
stopped by a NaN loss or a full disk still exports its best checkpoint (:func:`keep_best`).

Only global rank 0 writes (DDP); every file is written atomically.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import ensure_writable_dir, remove_orphan_temps, write_json
from .._perf import tune_allocator
from .._progress import progress_bar, stderr_is_terminal
from ..errors import DataError, DiskFullError, TrainingError
from ..runfolder.folder import (
    check_new_run,
    check_resume,
    checkpoint_step,
    clear_run,
    export_best,
    finished_run,
    holds_run,
    write_setup,
)
from ..runfolder.outcome import RunResult, extend_error, keep_best, nothing_to_do
from .config import TrainConfig
from .preflight import (
    apply_model_defaults,
    check_devices,
    check_model_fits,
    check_transfer,
    expected_image_shape,
)
from .recipe import build_model, normalization, output_count, weights_preprocessing
from .tracking import log_every, make_logger, tracking_callbacks
from .verdict_run import phase_progress, verdict_after_fit

if TYPE_CHECKING:
    import lightning as L
    from torch import nn

    from ..data import DataBundle
    from ..transfer.policy import FreezePolicy


@dataclass
class TrainingSetup:
    """What :func:`training_setup` prepares around the built model for the Trainer.

    Attributes:
        module: The LightningModule (the model, or its head alone on cached embeddings).
        datamodule: Image batches, or cached-embedding batches.
        policy: The freezing policy (a callback).
        callbacks: The callbacks this setup needs (the policy, or the logreg fitter).
        info: The contents of ``run.json`` (outputs, channels, normalisation, counts, notices).
    """

    module: Any
    datamodule: Any
    policy: FreezePolicy
    callbacks: list[Any]
    info: dict[str, Any]


def _env_global_rank() -> int:
    """Global rank of this process before the Trainer exists (Lightning's launcher sets these)."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", 0))
    node = int(os.environ.get("NODE_RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    nodes = max(1, int(os.environ.get("NUM_NODES", 1)))
    return node * max(1, world // nodes) + local


def prepare_run_dir(cfg: TrainConfig, rank: int) -> Path | None:
    """Check the run folder before anything slow: writable ``out``, holding no run unless ``resume``
    continues it or ``overwrite`` replaces it (:func:`~cnnlab.runfolder.folder.check_new_run`); with
    ``resume``, its checkpoint.

    The temporary files a killed writer left (``kill -9`` in the middle of a checkpoint) are removed
    first, from the run folder and its ``checkpoints/`` (not deeper: ``out`` may be a big folder).

    Returns:
        The checkpoint to resume from, or None.
    """
    if rank == 0:
        check_new_run(cfg)
        ensure_writable_dir(cfg.run_dir, option="--out")
        for folder in (cfg.run_dir, cfg.run_dir / "checkpoints"):
            remove_orphan_temps(folder, recursive=False)
    return check_resume(cfg, cfg.run_dir) if cfg.resume else None


def load_training_data(cfg: TrainConfig, *, progress: Callable[[int, int], None] | None = None) -> DataBundle:
    """The run's data, sized by ``img_size`` or else the starting weights' input size, in its own channels.

    ``progress(done, total)`` is called as files are decoded (not at all when the decode cache has them).

    Raises:
        DataError: Bad data, or an empty validation split.
    """
    from ..data import load_data

    weights = weights_preprocessing(cfg)
    bundle = load_data(
        cfg.data,
        data_dir=cfg.data_dir,
        img_size=cfg.img_size or (weights.input_size[-1] if weights is not None else None),
        val_split=cfg.val_split,
        seed=cfg.seed,
        limit=cfg.limit,
        grayscale=None,  # own channels; an RGB-pretrained stem is adapted (surgery.adapt_in_chans)
        progress=progress,
    )
    if len(bundle.val) == 0:
        raise DataError(
            f"{cfg.data}: the validation split is empty; use `val_split` > 0 or add val/", param="data"
        )
    return bundle


def _embedding_datamodule(cfg: TrainConfig, bundle: DataBundle, model: nn.Module, mean: Any, std: Any) -> Any:
    """``--transfer features`` without augmentation: the backbone runs once, its embeddings are cached."""
    from ..transfer import embeddings
    from ..transfer.on_embeddings import embedding_datamodule

    cache = Path(cfg.cache_dir) if cfg.cache_dir else embeddings.default_cache_dir()
    key = {"model": cfg.model, "weights": str(cfg.weights or cfg.pretrained)}
    show = cfg.progress and _env_global_rank() == 0
    cached = {}
    for split in ("train", "val"):
        with progress_bar(f"embeddings: {split}", enabled=show) as update:
            cached[split] = embeddings.compute_embeddings(
                model, getattr(bundle, split), batch_size=cfg.batch_size, cache_dir=cache, key_parts=key,
                mean=mean, std=std, progress=update,
            )
    return embedding_datamodule(cached["train"], cached["val"], batch_size=cfg.batch_size, seed=cfg.seed)


def training_setup(
    cfg: TrainConfig, bundle: DataBundle, model: nn.Module, *, num_classes: int, notices: list[str]
) -> TrainingSetup:
    """Freezing policy, normalisation, the data module and the Lightning module around ``model``.

    Images stay uint8 in memory and are normalised on the device; ``--transfer features`` without
    augmentation trains the head on cached embeddings (the frozen backbone never runs in the loop,
    and ``--head logreg`` is fitted in closed form).
    """
    from ..models.surgery import HeadKind
    from ..transfer.embeddings import use_embedding_cache
    from ..transfer.policy import FreezePolicy
    from .module import ClassifierModule

    in_chans = int(bundle.image_shape[0])
    policy = FreezePolicy.from_config(cfg)
    counts = policy.apply(model)
    mean, std = normalization(cfg, model, in_chans)
    trained: nn.Module = model
    callbacks: list[Any] = [policy]
    if use_embedding_cache(cfg):
        from ..transfer.on_embeddings import EmbeddingHead, LogRegHead

        dm = _embedding_datamodule(cfg, bundle, model, mean, std)
        trained = EmbeddingHead(model)
        callbacks = []
        if cfg.head is HeadKind.LOGREG:
            callbacks = [LogRegHead(model, dm.train_set, num_classes=num_classes, seed=cfg.seed)]
    else:
        from ..data.datamodule import ImageDataModule

        dm = ImageDataModule(
            bundle, batch_size=cfg.batch_size, augment=cfg.augment, mean=mean, std=std, seed=cfg.seed,
            num_workers=cfg.workers,
        )

    def groups(_: nn.Module) -> list[dict[str, Any]]:
        return policy.param_groups(model, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    module = ClassifierModule(trained, num_classes=num_classes, config=cfg, param_groups=groups)
    info = {
        "model": cfg.model,
        "num_classes": num_classes,
        "in_chans": in_chans,
        "head": cfg.head.value,
        "mean": list(mean),
        "std": list(std),
        "image_size": list(bundle.image_shape),
        "params": counts.as_dict(),
        "notices": notices,
    }
    return TrainingSetup(module, dm, policy, callbacks, info)


def bar_shown(cfg: TrainConfig) -> bool:
    """Lightning's progress bar only on a terminal: in a log, one line per epoch instead of redraws."""
    return cfg.progress and stderr_is_terminal()


def build_trainer(cfg: TrainConfig, run_dir: Path, callbacks: list[Any], **overrides: Any) -> L.Trainer:
    """The Lightning Trainer of a run (checkpoints, atomic writes, progress bar); ``overrides`` go to it."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from .callbacks import AtomicCheckpointIO, ThroughputBar

    tune_allocator()  # no page faults on the same activation buffers every step (cnnlab._perf)
    ckpt = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
        auto_insert_metric_name=False,
    )
    callbacks = [*callbacks, ckpt]
    if bar_shown(cfg):
        callbacks.append(ThroughputBar())
    strategy: Any = cfg.strategy.value
    if strategy == "ddp":
        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(find_unused_parameters=False)
    kwargs: dict[str, Any] = dict(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=strategy,
        deterministic=cfg.deterministic,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_progress_bar=bar_shown(cfg),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
        use_distributed_sampler=False,  # both data modules shard by rank themselves
    )
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


def run_trainer(trainer: L.Trainer, setup: TrainingSetup, last: Path | None, run_dir: Path) -> None:
    """``trainer.fit``; Ctrl-C and SIGTERM end in one line that says how to continue."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        ckpt = str(last) if last else None
        trainer.fit(setup.module, datamodule=setup.datamodule, ckpt_path=ckpt, weights_only=True)
    except (SIGTERMException, SystemExit) as exc:
        # Lightning turns Ctrl-C into sys.exit(1) after a graceful shutdown, SIGTERM into SIGTERMException.
        if isinstance(exc, SystemExit) and not trainer.interrupted:
            raise
        kept = run_dir / "checkpoints" / "last.ckpt"
        state = f"the last checkpoint is {kept}" if kept.is_file() else "no checkpoint was written yet"
        why = "SIGTERM" if isinstance(exc, SIGTERMException) else "Ctrl-C"
        raise TrainingError(f"interrupted ({why}); {state}; continue with `out` {run_dir} `resume`") from None


def finish_run(
    trainer: L.Trainer, setup: TrainingSetup, model: nn.Module, rows: list[dict[str, Any]], run_dir: Path,
    *, started: float | None = None,
) -> RunResult:
    """The run's result; on rank 0 the best weights go to ``model.safetensors`` and ``run.json``.

    ``started`` (``time.perf_counter()`` when ``fit`` began) makes ``run.json`` record the whole wall time
    (``wall_seconds``: decoding, embeddings, training, export), added to an earlier one on ``resume``.

    Raises:
        DiskFullError: No room for the export; the message says how to finish it once there is.
    """
    if not rows:
        raise TrainingError("training produced no epoch; check `epochs` and `limit`")
    best = min(rows, key=lambda r: r["val_loss"])
    info = setup.info
    result = RunResult(
        run_dir=run_dir,
        best_val_loss=float(best["val_loss"]),
        best_epoch=int(best["epoch"]),
        metrics=[dict(r) for r in rows],
        params=dict(info["params"]),
        num_classes=int(info["num_classes"]),
        notices=list(info["notices"]),
        global_rank=trainer.global_rank,
        epochs=int(trainer.max_epochs or 0),
    )
    if trainer.is_global_zero:
        best_ckpt = run_dir / "checkpoints" / "best.ckpt"
        try:
            export_best(setup.module, model, best_ckpt, run_dir / "model.safetensors", info)
            info.update(best_epoch=result.best_epoch, best_val_loss=result.best_val_loss)
            if started is not None:
                info["wall_seconds"] = round(time.perf_counter() - started, 3)
            write_json(run_dir / "run.json", info)
        except DiskFullError as exc:
            more = (f"training finished and its best weights are in {best_ckpt}: free space, then resume the "
                    f"run (`out` {run_dir} `resume`) to export them")
            raise extend_error(exc, more) from None
    return result


def _earlier_wall_seconds(run_dir: Path) -> float:
    import json

    try:
        value = json.loads((run_dir / "run.json").read_text()).get("wall_seconds", 0.0)
    except (OSError, ValueError, AttributeError):
        return 0.0
    return float(value) if isinstance(value, (int, float)) else 0.0


def quiet_lightning() -> None:
    """Silence Lightning's banner lines and known-harmless warnings (cnnlab's messages say what matters)."""
    import logging
    import warnings

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*litlogger.*")


def fit(
    config: TrainConfig,
    *,
    callbacks: list[Any] | tuple[Any, ...] = (),
    on_setup: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Train ``config.model`` on ``config.data`` and write the run folder.

    Args:
        config: Every option of the run.
        callbacks: Extra Lightning callbacks (behaviour is added with callbacks, not by subclassing).
        on_setup: Called on rank 0 with the contents of ``run.json`` (parameter counts, outputs, input
            size, notices) once the model and data are ready, before training starts.

    Returns:
        The run folder, best validation loss and the metrics per epoch.

    Raises:
        CnnlabError: An unwritable ``--out`` (before any work), bad data or model options, a
            ``--resume`` without a checkpoint; :class:`TrainingError` when the loss diverges.
    """
    import lightning as L

    from ..transfer.embeddings import use_embedding_cache
    from . import lr_find
    from .callbacks import EpochLines, MetricsHistory, NonFiniteGuard

    started = time.perf_counter()
    rank = _env_global_rank()
    check_transfer(config)
    lr_find.check_lr_find(config)
    find = config.lr_find and config.lr is None  # a config with both set holds the rate found before
    cfg, notices = apply_model_defaults(config)
    check_devices(cfg)
    replacing = cfg.overwrite and holds_run(cfg.run_dir)  # else nothing of the folder is deleted
    last = prepare_run_dir(cfg, rank)
    if last is not None:  # resumed: the wall time of the earlier part counts too (run.json's, if any)
        started -= _earlier_wall_seconds(cfg.run_dir)
    done = finished_run(cfg, last) if last is not None else None
    if done is not None:
        return nothing_to_do(cfg, done, rank=rank)
    check_model_fits(cfg, expected_image_shape(cfg), images=cfg.limit)  # before decoding anything
    show = cfg.progress and rank == 0
    with progress_bar(f"decoding {cfg.data}", enabled=show) as decoded:
        bundle = load_training_data(cfg, progress=decoded)
    num_classes = output_count(cfg, len(bundle.classes))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build_model(cfg, in_chans=int(bundle.image_shape[0]), num_classes=num_classes, notices=notices)
    check_model_fits(cfg, bundle.image_shape, model=model, images=len(bundle.train))
    setup = training_setup(cfg, bundle, model, num_classes=num_classes, notices=notices)
    if find:  # the suggestion becomes `lr`; the set-up is built again around the restored weights
        finder = build_trainer(cfg.replace(progress=False), cfg.run_dir, list(setup.callbacks), logger=False,
                               max_epochs=lr_find.STEPS)
        cfg = lr_find.use_found_lr(cfg, finder, setup, notices)
        setup = training_setup(cfg, bundle, model, num_classes=num_classes, notices=notices)
    from ..report.plots import curves_title

    history = MetricsHistory(cfg.run_dir, title=curves_title(cfg.model or "model", cfg.transfer, cfg.data))
    lines = [] if bar_shown(cfg) else [EpochLines(history)]  # without the bar: one line per epoch
    tracking = tracking_callbacks(cfg, history, model=model, val=bundle.val, info=setup.info,
                                  classes=list(bundle.classes), on_images=not use_embedding_cache(cfg),
                                  notices=notices)
    ours = [history, *lines, NonFiniteGuard(), *setup.callbacks, *tracking]
    resumed_at = checkpoint_step(last) if last is not None else None
    trainer = build_trainer(cfg, cfg.run_dir, [*ours, *callbacks],
                            logger=make_logger(cfg, cfg.run_dir, resumed_at=resumed_at),
                            log_every_n_steps=log_every(len(bundle.train), cfg.batch_size))
    if rank == 0:
        if replacing:  # only now, with the data and model ready: a failed start keeps the old run
            clear_run(cfg.run_dir, keep=(lr_find.FIGURE,) if find else ())
        write_setup(cfg.run_dir, cfg, list(bundle.classes), setup.info)
        if on_setup is not None:
            on_setup(setup.info)
    try:
        run_trainer(trainer, setup, last, cfg.run_dir)
    except (TrainingError, DiskFullError) as exc:  # a NaN loss or a full disk: keep the best epoch
        if not trainer.is_global_zero:
            raise
        raise keep_best(exc, module=setup.module, model=model, info=setup.info, rows=history.rows,
                        run_dir=cfg.run_dir) from None
    result = finish_run(trainer, setup, model, history.rows, cfg.run_dir, started=started)
    if trainer.is_global_zero:
        result.verdict = verdict_after_fit(cfg.run_dir, bundle, progress=phase_progress() if show else None)
    return result




__all__ = [
    "RunResult",
    "TrainingSetup",
    "build_trainer",
    "finish_run",
    "fit",
    "load_training_data",
    "prepare_run_dir",
    "quiet_lightning",
    "run_trainer",
    "training_setup",
]
