"""``fit(config)``: a dataset and a model in, a complete run folder out; ``load_run(path)`` reads it back.

The run folder (DESIGN.md, "A run folder is the unit of work")::

    config.yaml            every option (TrainConfig) — enough to reproduce the run
    classes.json           class names, in output order
    run.json               what load_run needs besides the config (outputs, channels, normalisation,
                           image size) and the parameter counts, best epoch and best validation loss
    metrics.csv            epoch, train_loss, train_acc, val_loss, val_acc, lr (identical for equal seeds)
    timing.csv             seconds and training images/s per epoch
    curves.png             learning curves, overfitting onset marked
    checkpoints/best.ckpt  lowest validation loss;  checkpoints/last.ckpt  end of the last epoch
    model.safetensors      the best weights, loadable without Lightning

Only global rank 0 writes (DDP); every file is written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import ensure_writable_dir, save_safetensors, write_json, write_text
from .._perf import tune_allocator
from ..errors import CnnlabError, TrainingError
from .config import TrainConfig, Transfer

if TYPE_CHECKING:
    import lightning as L
    from torch import nn

#: Options that may differ between a run and its ``--resume`` (they do not change the numbers).
_RESUME_FREE = {
    "epochs",
    "devices",
    "num_nodes",
    "strategy",
    "accelerator",
    "workers",
    "progress",
    "resume",
    "out",
    "channels_last",  # a memory layout: the same computation up to float rounding
}


@dataclass
class RunResult:
    """What :func:`fit` produced.

    Attributes:
        run_dir: The run folder.
        best_val_loss: Lowest validation loss over the epochs.
        best_epoch: 1-based epoch of ``best_val_loss``.
        metrics: One dict per epoch (the rows of ``metrics.csv``).
        params: Trainable/frozen/total parameter counts.
        num_classes: Model outputs (1 for a binary model).
        notices: One-line notices raised while setting up (e.g. an adapted input layer).
        global_rank: The process's rank (only rank 0 wrote the folder).
    """

    run_dir: Path
    best_val_loss: float
    metrics: list[dict[str, Any]]
    best_epoch: int = 0
    params: dict[str, int] = field(default_factory=dict)
    num_classes: int = 0
    notices: list[str] = field(default_factory=list)
    global_rank: int = 0

    def summary(self) -> str:
        """One paragraph for the terminal: what was trained, how well, and where everything is."""
        last = self.metrics[-1] if self.metrics else {}
        best = next((m for m in self.metrics if m.get("epoch") == self.best_epoch), last)
        nan = float("nan")
        return (
            f"Trained {len(self.metrics)} epoch(s); best validation loss {self.best_val_loss:.4f} at epoch "
            f"{self.best_epoch} (validation accuracy {best.get('val_acc', nan):.2%}; last epoch "
            f"{last.get('val_acc', nan):.2%}). Trainable parameters {self.params.get('trainable', 0):,} "
            f"of {self.params.get('total', 0):,}. The run folder is {self.run_dir}: config.yaml, "
            "metrics.csv, curves.png, checkpoints/best.ckpt and last.ckpt, model.safetensors, classes.json. "
            f"Evaluate it with `cnnlab evaluate {self.run_dir}`; continue it with "
            f"`--out {self.run_dir} --resume`."
        )


@dataclass
class LoadedRun:
    """A trained model read back from a run folder (see :func:`load_run`).

    Attributes:
        model: The network in eval mode, best weights loaded.
        classes: Class names (for a binary model: index 0 below, 1 above the 0.5 threshold).
        config: The run's :class:`TrainConfig`.
        mean: Per-channel normalisation mean (0-1 units).
        std: Per-channel normalisation std.
        image_size: (C, H, W) the model was trained on.
        path: The run folder.
        num_classes: Model outputs (1 for a binary model).
    """

    model: nn.Module
    classes: list[str]
    config: TrainConfig
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: tuple[int, int, int]
    path: Path
    num_classes: int = 0

    @property
    def binary(self) -> bool:
        """True for a one-logit model (sigmoid > 0.5 means ``classes[1]``)."""
        return self.num_classes == 1


def _env_global_rank() -> int:
    """Global rank of this process before the Trainer exists (Lightning's launcher sets these)."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", 0))
    node = int(os.environ.get("NODE_RANK", 0))
    return node * max(1, _local_world()) + local


def _local_world() -> int:
    world = int(os.environ.get("WORLD_SIZE", 1))
    nodes = max(1, int(os.environ.get("NUM_NODES", 1)))
    return world // nodes


def _check_resume(cfg: TrainConfig, run_dir: Path) -> Path:
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise TrainingError(f"--resume: no checkpoint at {last}; start the run without --resume")
    import torch

    try:  # memory-mapped: checks the file without reading the tensors
        torch.load(last, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # truncated or not a checkpoint: say so before any work
        first = str(exc).splitlines()[0].split(". ")[0] if str(exc) else type(exc).__name__
        raise TrainingError(
            f"--resume: {last} is damaged ({first}); restore it, or start again without --resume"
        ) from None
    saved_path = run_dir / "config.yaml"
    if saved_path.is_file():
        saved = TrainConfig.from_yaml(saved_path).to_dict()
        now = cfg.to_dict()
        diff = [k for k in now if k not in _RESUME_FREE and now[k] != saved.get(k)]
        if diff:
            detail = ", ".join(f"--{k.replace('_', '-')} {now[k]!r} (run: {saved.get(k)!r})" for k in diff)
            raise TrainingError(
                f"--resume: options differ from {saved_path}: {detail}; use the run's options or a new --out"
            )
    return last


def _normalization(
    model: nn.Module, cfg: TrainConfig, in_chans: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    pcfg = getattr(model, "pretrained_cfg", None)
    if cfg.pretrained and pcfg is not None:
        from .transfer import gray_mean_std

        mean, std = gray_mean_std(pcfg.mean, pcfg.std, in_chans)
        return tuple(mean), tuple(std)
    # From scratch: pixels scaled to [0, 1], as in the course notebooks.
    return (0.0,) * in_chans, (1.0,) * in_chans


def _classifier_outputs(model: nn.Module) -> int:
    return int(model.classifier_layer().out_features)  # type: ignore[operator]


def create_base_model(cfg: TrainConfig, *, in_chans: int | None) -> nn.Module:
    """The registry's model with its default head (and pretrained weights when the config asks)."""
    from ..models import create_model

    pretrained: bool | str = cfg.weights or cfg.pretrained
    return create_model(cfg.model, pretrained=pretrained, in_chans=None if pretrained else in_chans)


def finish_model(
    model: nn.Module, cfg: TrainConfig, *, n_classes: int, in_chans: int
) -> tuple[int, list[str]]:
    """Size the head for the data and adapt the input layer to its channels (in place).

    A model whose default head has one output (the course's cats network) stays binary on a two-class
    dataset; otherwise the head gets ``n_classes`` outputs.

    Returns:
        (number of outputs, notices for the user)
    """
    from .transfer import adapt_in_chans, configure_head

    default = _classifier_outputs(model)
    num_classes = 1 if (default == 1 and n_classes == 2) else n_classes
    if num_classes != default or cfg.head != "linear":
        configure_head(model, kind=cfg.head, num_classes=num_classes)
    notice = adapt_in_chans(model, in_chans)
    return num_classes, [notice] if notice else []


def _load_bundle(cfg: TrainConfig, img_size: int | None) -> Any:
    from ..data import load_data

    return load_data(
        cfg.data,
        data_dir=cfg.data_dir,
        img_size=cfg.img_size or img_size,
        val_split=cfg.val_split,
        seed=cfg.seed,
        limit=cfg.limit,
        grayscale=None,  # own channels; an RGB-pretrained stem is adapted (transfer.adapt_in_chans)
    )


def _datamodule(cfg: TrainConfig, bundle: Any, model: nn.Module, mean: Any, std: Any, run_dir: Path) -> Any:
    """Images (uint8 in memory, normalised on the device) or, for ``features``, cached embeddings."""
    if cfg.transfer is Transfer.FEATURES:
        from . import embeddings

        if embeddings.use_embedding_cache(cfg):
            cache = Path(cfg.cache_dir) if cfg.cache_dir else embeddings.default_cache_dir()
            key = {"model": cfg.model, "weights": str(cfg.weights or cfg.pretrained)}
            show = cfg.progress and _env_global_rank() == 0
            cached = {}
            for split in ("train", "val"):
                with embeddings.progress_bar(f"embeddings: {split}", enabled=show) as update:
                    cached[split] = embeddings.compute_embeddings(
                        model,
                        getattr(bundle, split),
                        batch_size=cfg.batch_size,
                        cache_dir=cache,
                        key_parts=key,
                        mean=mean,
                        std=std,
                        progress=update,
                    )
            train, val = cached["train"], cached["val"]
            return embeddings.embedding_datamodule(train, val, batch_size=cfg.batch_size, seed=cfg.seed), True
    from ..data.datamodule import ImageDataModule

    dm = ImageDataModule(
        bundle,
        batch_size=cfg.batch_size,
        augment=cfg.augment,
        mean=mean,
        std=std,
        seed=cfg.seed,
        num_workers=cfg.workers,
    )
    return dm, False


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
    if cfg.progress:
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
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
        use_distributed_sampler=False,  # both data modules shard by rank themselves
    )
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


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
    cfg = config
    run_dir = cfg.run_dir
    rank = _env_global_rank()
    if rank == 0:  # before anything slow: an unwritable --out fails at once
        ensure_writable_dir(run_dir, option="--out")
    last = _check_resume(cfg, run_dir) if cfg.resume else None

    import lightning as L

    from ..errors import DataError
    from .callbacks import MetricsHistory, NonFiniteGuard
    from .module import ClassifierModule
    from .transfer import FreezePolicy

    model = None
    img_size = None
    if cfg.pretrained:  # the weights' config sets the input size
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        model = create_base_model(cfg, in_chans=None)
        pcfg = getattr(model, "pretrained_cfg", None)
        img_size = pcfg.input_size[-1] if pcfg is not None else None
    bundle = _load_bundle(cfg, img_size)
    if len(bundle.val) == 0:
        raise DataError(f"--data {cfg.data}: the validation split is empty; use --val-split > 0 or add val/")
    in_chans = int(bundle.image_shape[0])
    if model is None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        model = create_base_model(cfg, in_chans=in_chans)
    num_classes, notices = finish_model(model, cfg, n_classes=len(bundle.classes), in_chans=in_chans)
    policy = FreezePolicy.from_config(cfg)
    counts = policy.apply(model)
    mean, std = _normalization(model, cfg, in_chans)
    dm, on_embeddings = _datamodule(cfg, bundle, model, mean, std, run_dir)
    trained: nn.Module = model
    if on_embeddings:
        from .embeddings import EmbeddingHead

        trained = EmbeddingHead(model)

    def groups(m: nn.Module) -> list[dict[str, Any]]:
        return policy.param_groups(model, lr=cfg.lr, weight_decay=cfg.weight_decay)

    module = ClassifierModule(trained, num_classes=num_classes, config=cfg, param_groups=groups)
    title = f"{cfg.model} on {cfg.data}"
    history = MetricsHistory(run_dir, title=title)
    extra: list[Any] = [policy]
    if on_embeddings:  # the frozen backbone never runs; --head logreg is fitted in closed form
        from .embeddings import LogRegHead

        extra = (
            [LogRegHead(model, dm.train_set, num_classes=num_classes, seed=cfg.seed)]
            if cfg.head == "logreg"
            else []
        )
    trainer = build_trainer(cfg, run_dir, [history, NonFiniteGuard(), *extra, *callbacks])

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
    if rank == 0:
        write_text(run_dir / "config.yaml", cfg.to_yaml())
        write_json(run_dir / "classes.json", list(bundle.classes))
        write_json(run_dir / "run.json", info)
        if on_setup is not None:
            on_setup(info)

    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(last) if last else None, weights_only=True)
    except (SIGTERMException, SystemExit) as exc:
        # Lightning turns Ctrl-C into sys.exit(1) after a graceful shutdown, SIGTERM into SIGTERMException.
        if isinstance(exc, SystemExit) and not trainer.interrupted:
            raise
        kept = run_dir / "checkpoints" / "last.ckpt"
        state = f"the last checkpoint is {kept}" if kept.is_file() else "no checkpoint was written yet"
        why = "SIGTERM" if isinstance(exc, SIGTERMException) else "Ctrl-C"
        raise TrainingError(f"interrupted ({why}); {state}; continue with --out {run_dir} --resume") from None

    rows = history.rows
    if not rows:
        raise TrainingError("training produced no epoch; check --epochs and --limit")
    best = min(rows, key=lambda r: r["val_loss"])
    result = RunResult(
        run_dir=run_dir,
        best_val_loss=float(best["val_loss"]),
        best_epoch=int(best["epoch"]),
        metrics=[dict(r) for r in rows],
        params=counts.as_dict(),
        num_classes=num_classes,
        notices=notices,
        global_rank=trainer.global_rank,
    )
    if trainer.is_global_zero:
        _export_best(
            module, model, run_dir / "checkpoints" / "best.ckpt", run_dir / "model.safetensors", info
        )
        info.update(best_epoch=result.best_epoch, best_val_loss=result.best_val_loss)
        write_json(run_dir / "run.json", info)
    return result


def _export_best(
    module: nn.Module, model: nn.Module, best_ckpt: Path, dest: Path, info: dict[str, Any]
) -> None:
    """Load the best checkpoint's weights into ``model`` and write them as safetensors."""
    import torch

    state = torch.load(best_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_safetensors(
        dest, tensors, metadata={"model": str(info["model"]), "num_classes": str(info["num_classes"])}
    )


def load_run(path: str | Path) -> LoadedRun:
    """Read a run folder back: the model (eval mode, best weights) and how to feed it.

    Args:
        path: A run folder written by :func:`fit`.

    Returns:
        A :class:`LoadedRun`.

    Raises:
        CnnlabError: When ``path`` is not a complete run folder.
    """
    from safetensors.torch import load_file

    run_dir = Path(path)
    needed = ["config.yaml", "classes.json", "run.json", "model.safetensors"]
    missing = [n for n in needed if not (run_dir / n).is_file()]
    if missing:
        raise CnnlabError(
            f"{run_dir}: not a finished cnnlab run folder (missing {', '.join(missing)}); "
            "train one with `cnnlab train`"
        )
    cfg = TrainConfig.from_yaml(run_dir / "config.yaml")
    try:
        info = json.loads((run_dir / "run.json").read_text())
        classes = json.loads((run_dir / "classes.json").read_text())
        absent = [k for k in ("in_chans", "mean", "std") if k not in info]
        if absent:
            raise KeyError(", ".join(absent))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CnnlabError(
            f"{run_dir}: run.json or classes.json is damaged ({type(exc).__name__}: {exc}); "
            "train the run again or restore the files"
        ) from None
    # Architecture only: the weights come from model.safetensors (never re-downloaded).
    arch = cfg.replace(pretrained=False, weights=None)
    model = create_base_model(arch, in_chans=int(info["in_chans"]))
    finish_model(model, arch, n_classes=len(classes), in_chans=int(info["in_chans"]))
    try:
        state = load_file(str(run_dir / "model.safetensors"))
    except Exception as exc:  # any reader failure (truncated, not safetensors) is a damaged file
        raise CnnlabError(
            f"{run_dir / 'model.safetensors'}: damaged, cannot be read ({exc}); restore the file or "
            "train the run again"
        ) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CnnlabError(
            f"{run_dir / 'model.safetensors'}: does not fit model {cfg.model} ({first})"
        ) from None
    model.eval()
    return LoadedRun(
        model=model,
        classes=list(classes),
        config=cfg,
        mean=tuple(info["mean"]),
        std=tuple(info["std"]),
        image_size=tuple(info["image_size"]),  # type: ignore[arg-type]
        path=run_dir,
        num_classes=int(info["num_classes"]),
    )
