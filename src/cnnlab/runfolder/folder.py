"""The run folder (DESIGN.md, "A run folder is the unit of work"): writing its set-up, reading it back.

Layout::

    config.yaml            every option (TrainConfig) — enough to reproduce the run
    classes.json           class names, in output order
    run.json               what load_run needs besides the config (outputs, channels, normalisation,
                           image size) and the parameter counts, best epoch and best validation loss
    metrics.csv            epoch, train_loss, train_acc, val_loss, val_acc, lr, then each parameter group's
                           lr_head, lr_backbone (identical for equal seeds)
    lr_find.png            with ``lr_find``: the learning-rate finder's curve, its suggestion marked
    tensorboard/           with ``logger`` tensorboard: the event files
    timing.csv             seconds and training images/s per epoch
    curves.png             learning curves, overfitting onset marked
    checkpoints/best.ckpt  lowest validation loss;  checkpoints/last.ckpt  end of the last epoch
    model.safetensors      the best weights, loadable without Lightning

:func:`load_run` rebuilds the model with the same :func:`~cnnlab.train.recipe.build_model` that
training used, then loads ``model.safetensors``. :func:`resume_config` and :func:`check_resume` decide
what ``--resume`` continues. Every file is written atomically.

A run is never lost to another command: :func:`check_new_run` refuses to train into a folder that holds
a run (finished or not) unless ``resume`` continues it or ``overwrite`` replaces it, and
:func:`check_output` refuses any other command's output path that names a file of a run folder it did not
write itself (:data:`OWN_FILES`: ``report --out R/config.yaml`` would have replaced the run's config).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import save_safetensors, write_json, write_text
from ..errors import CnnlabError, TrainingError
from ..train.config import TrainConfig
from .schema import RunFileError, check_checkpoint, read_classes, read_info

if TYPE_CHECKING:
    from torch import nn

    from ..data.transforms import Preprocess

__all__ = [
    "OWN_FILES",
    "TRAIN_FILES",
    "LoadedRun",
    "check_new_run",
    "check_output",
    "check_resume",
    "clear_run",
    "describe_run",
    "epochs_done",
    "export_best",
    "finished_run",
    "holds_run",
    "load_run",
    "resume_config",
    "write_setup",
]

#: Options that may differ between a run and its ``--resume`` (they do not change the numbers).
RESUME_FREE = {
    "epochs",
    "devices",
    "num_nodes",
    "strategy",
    "accelerator",
    "workers",
    "progress",
    "resume",
    "overwrite",
    "out",
    "channels_last",  # a memory layout: the same computation up to float rounding
    "logger",  # where the numbers are written, not what they are
}

#: The files ``cnnlab train`` writes into a run folder (relative to it): no other command writes over them.
TRAIN_FILES = ("config.yaml", "classes.json", "run.json", "metrics.csv", "timing.csv", "curves.png",
               "model.safetensors", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "lr_find.png")
#: Folders ``cnnlab train`` fills (``--logger tensorboard``'s event files): nothing else writes into them.
TRAIN_DIRS = ("tensorboard",)
#: The files each command writes into a run folder; a command writes over no other command's files.
OWN_FILES: dict[str, tuple[str, ...]] = {
    "train": TRAIN_FILES,
    "evaluate": ("evaluation.json", "confusion.png", "top_losses.png"),
    "probe": ("probe.png", "embedding_map.png", "probe.json"),
    "report": ("report.html",),
    "export": ("model.onnx", "model.onnx.json", "model.torchscript.pt", "model.torchscript.pt.json"),
    "explain": ("explain.png",),
    "features": ("features.png",),
    "dream": ("dream.png",),
}


def holds_run(folder: str | Path) -> bool:
    """True when ``folder`` holds a run, finished or not (any file ``cnnlab train`` writes)."""
    return any((Path(folder) / name).is_file() for name in TRAIN_FILES)


def _epochs_recorded(path: Path) -> int | None:
    """Epoch rows of a ``metrics.csv`` (None when there is none or it cannot be read)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return max(0, sum(1 for line in lines if line.strip()) - 1)


def describe_run(folder: str | Path) -> str:
    """What a run folder holds, in a few words: "a finished run (mnist_cnn on sample, 2 epochs)",
    "an unfinished run (mnist_cnn on sample: 1 of 10 epochs in metrics.csv; checkpoints: last.ckpt)"."""
    folder = Path(folder)
    try:
        cfg: TrainConfig | None = TrainConfig.from_yaml(folder / "config.yaml")
    except CnnlabError:
        cfg = None
    what = f"{cfg.model} on {cfg.data}" if cfg is not None else "config.yaml unreadable"
    done = _epochs_recorded(folder / "metrics.csv")
    ckpts = [p.name for p in (folder / "checkpoints" / "last.ckpt", folder / "checkpoints" / "best.ckpt")
             if p.is_file()]
    if (folder / "model.safetensors").is_file() and done:
        return f"a finished run ({what}, {done} epoch{'s' if done != 1 else ''})"
    if not done:
        epochs = "no epoch in metrics.csv: it stopped before its first epoch ended"
    else:
        epochs = f"{done} of {cfg.epochs if cfg is not None else '?'} epochs in metrics.csv"
    return f"an unfinished run ({what}: {epochs}; checkpoints: {', '.join(ckpts) or 'none'})"


def check_new_run(cfg: TrainConfig) -> None:
    """Refuse to start a run in a folder that holds one, unless ``resume`` or ``overwrite`` says what to do.

    Raises:
        TrainingError: ``out`` holds a run (finished or not): the message says what it holds, and how to
            continue it (``resume``), replace it (``overwrite``) or keep it (a new ``out``).
    """
    if cfg.resume or cfg.overwrite or not holds_run(cfg.run_dir):
        return
    raise TrainingError(f"`out` {cfg.run_dir} holds {describe_run(cfg.run_dir)}; continue it with `resume`, "
                        "replace it with `overwrite`, or choose a new `out`")


def checkpoint_step(path: str | Path) -> int:
    """The global step a Lightning checkpoint was saved at (read safely, memory-mapped)."""
    return int(check_checkpoint(Path(path), fix="restore it, or start again with `overwrite`")["global_step"])


def demo_run_to_replace(run: str | Path) -> bool:
    """Does ``run`` hold the run an earlier ``cnnlab demo`` made (mnist_cnn on sample), which a new demo
    replaces? False when it holds no run.

    Raises:
        CnnlabError: It holds another run: the demo never replaces a user's run.
    """
    run = Path(run)
    if not holds_run(run):
        return False
    try:
        cfg = TrainConfig.from_yaml(run / "config.yaml")
        ours = cfg.model == "mnist_cnn" and cfg.data == "sample"
    except CnnlabError:
        ours = False
    if not ours:
        raise CnnlabError(f"`out` {run.parent}: {run} holds {describe_run(run)}, not a demo's; the demo "
                          "writes its run there, so choose another `out`")
    return True


def clear_run(folder: str | Path, *, keep: tuple[str, ...] = ()) -> list[Path]:
    """Delete the files of the run ``folder`` holds (``overwrite``): every file of :data:`OWN_FILES` and
    the folders of :data:`TRAIN_DIRS`, nothing else (the folder may hold the user's own files).

    Args:
        folder: The run folder.
        keep: Names the new run has already written there (its ``lr_find.png``).

    Returns:
        The deleted files and folders.
    """
    import shutil

    folder = Path(folder)
    removed = []
    for name in dict.fromkeys(n for names in OWN_FILES.values() for n in names):
        path = folder / name
        if path.is_file() and name not in keep:
            path.unlink()
            removed.append(path)
    for name in TRAIN_DIRS:
        if (folder / name).is_dir():
            shutil.rmtree(folder / name)
            removed.append(folder / name)
    return removed


def check_output(path: str | Path, *, writer: str | None = None, option: str = "--out") -> Path:
    """``path``, unless it names a file of a run folder that ``writer`` does not write (:data:`OWN_FILES`).

    Checked before any work, so that ``report R --out R/config.yaml`` ends at once in one line instead of
    replacing the run's config after minutes of work.

    Args:
        path: The file a command is about to write.
        writer: The command writing it (``"report"``: ``R/report.html`` is its own); None for a command
            that owns no file of a run folder.
        option: The option that chose ``path``, for the message.

    Raises:
        CnnlabError: naming ``option``, the file, its run folder and the command that wrote it.
    """
    p = Path(path)
    for folder, name in ((p.parent, p.name), (p.parent.parent, f"{p.parent.name}/{p.name}")):
        owner = next((cmd for cmd, names in OWN_FILES.items() if name in names), None)
        if name.split("/")[0] in TRAIN_DIRS and "/" in name:  # anything inside train's own folders
            owner = "train"
        if owner is None or owner == writer or not holds_run(folder):
            continue
        raise CnnlabError(f"{option} {p}: that is {name} of the run folder {folder or '.'} (written by "
                          f"`cnnlab {owner}`), which is never written over; choose another file")
    return p


@dataclass
class LoadedRun:
    """A trained model read back from a run folder (see :func:`load_run`).

    Attributes:
        model: The network in eval mode, best weights loaded, ``requires_grad`` as trained.
        classes: Class names (for a binary model: index 0 below, 1 above the 0.5 threshold).
        config: The run's :class:`TrainConfig`.
        mean: Per-channel normalisation mean (0-1 units).
        std: Per-channel normalisation std.
        image_size: (C, H, W) the model was trained on; (C, L) for series.
        path: The run folder.
        num_classes: Model outputs (1 for a binary model).
    """

    model: nn.Module
    classes: list[str]
    config: TrainConfig
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: tuple[int, ...]
    path: Path
    num_classes: int = 0

    @property
    def binary(self) -> bool:
        """True for a one-logit model (sigmoid > 0.5 means ``classes[1]``)."""
        return self.num_classes == 1

    @property
    def preprocess(self) -> Preprocess:
        """Image files -> this model's input, exactly as the training data was decoded and normalised."""
        from ..data.transforms import Preprocess

        return Preprocess(self.image_size, self.mean, self.std)


def write_setup(run_dir: Path, cfg: TrainConfig, classes: list[str], info: dict[str, Any]) -> None:
    """Write what a run folder needs before the first epoch: config, classes, run info."""
    # resume/overwrite say what to do with the folder once: a config read back (from_yaml) starts afresh
    write_text(run_dir / "config.yaml", cfg.replace(resume=False, overwrite=False).to_yaml())
    write_json(run_dir / "classes.json", list(classes))
    write_json(run_dir / "run.json", info)


def resume_config(cfg: TrainConfig, typed: set[str]) -> TrainConfig:
    """The config ``--resume`` continues: the run's saved options, overridden by those typed now.

    Args:
        cfg: The options as given now (defaults included).
        typed: Names of the options the user gave explicitly (the rest are defaults).

    Returns:
        ``cfg`` itself without ``resume`` or without a saved ``config.yaml``; else the merged config
        (:func:`check_resume` then refuses options that would change the numbers).
    """
    saved = cfg.run_dir / "config.yaml"
    if not cfg.resume or not saved.is_file():
        return cfg
    if cfg.lr_find and cfg.lr is None:  # `lr` find typed again: the rate found before stays
        typed = (typed - {"lr"}) | {"lr_find"}
    base = TrainConfig.from_yaml(saved).to_dict()
    base.update({k: v for k, v in cfg.to_dict().items() if k in typed or k in ("resume", "overwrite", "out")})
    return TrainConfig.from_dict(base)


def _resume_error(exc: RunFileError) -> TrainingError:
    return TrainingError(f": {exc.message}", param="resume")


def check_resume(cfg: TrainConfig, run_dir: Path) -> Path:
    """The checkpoint ``--resume`` continues from, checked before any work.

    That is ``last.ckpt`` (the end of the last finished epoch), or ``best.ckpt`` when it is newer: a
    run killed after writing ``best.ckpt`` and before ``last.ckpt`` (in its first epoch there is no
    ``last.ckpt`` yet) continues from it. Both are loaded with ``weights_only=True``.

    Raises:
        TrainingError: No checkpoint, a damaged one, or options that differ from the run's.
    """
    folder = run_dir / "checkpoints"
    last, best = folder / "last.ckpt", folder / "best.ckpt"
    if not last.is_file() and not best.is_file():
        if not holds_run(run_dir):
            raise TrainingError(f": no checkpoint in {folder} (no run there); start the run without `resume`",
                                param="resume")
        done = _epochs_recorded(run_dir / "metrics.csv")
        state = describe_run(run_dir) + (
            ", but no checkpoint: it was stopped while writing its first one" if done else "")
        raise TrainingError(f": no checkpoint in {folder} to continue from; {run_dir} holds {state}; start "
                            "the run again with `overwrite`", param="resume")
    fix = "restore it, or start again with `overwrite`"
    found: list[tuple[int, int, Path]] = []
    for rank, path in enumerate((last, best)):  # at equal steps last.ckpt wins
        if path.is_file():
            try:
                ckpt = check_checkpoint(path, fix=fix)
            except RunFileError as exc:
                raise _resume_error(exc) from None
            found.append((int(ckpt["global_step"]), -rank, path))
    chosen = max(found)[2]
    saved_path = run_dir / "config.yaml"
    if saved_path.is_file():
        saved = TrainConfig.from_yaml(saved_path).to_dict()
        now = cfg.to_dict()
        diff = [k for k in now if k not in RESUME_FREE and now[k] != saved.get(k)]
        if diff:
            detail = ", ".join(f"`{k}` {now[k]!r} (run: {saved.get(k)!r})" for k in diff)
            raise TrainingError(
                f": options differ from {saved_path}: {detail}; use the run's options or a new `out`",
                param="resume",
            )
    return chosen


def epochs_done(ckpt: Path) -> int:
    """Epochs a (checked) Lightning checkpoint has finished."""
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)["epoch"]) + 1


def finished_run(cfg: TrainConfig, ckpt: Path) -> dict[str, Any] | None:
    """``run.json`` of a run ``--resume`` has nothing left to do for, else None.

    A run is finished when ``ckpt`` holds ``cfg.epochs`` epochs and the run folder was completed:
    ``model.safetensors`` exported and ``run.json`` naming the best epoch. A run whose epochs are done
    but whose export did not happen (a full disk, a kill) is not: resuming it exports the weights.
    """
    run_dir = cfg.run_dir
    if epochs_done(ckpt) < cfg.epochs or not (run_dir / "model.safetensors").is_file():
        return None
    try:
        info = read_info(run_dir / "run.json", read_classes(run_dir / "classes.json"))
    except RunFileError:
        return None
    return info if "best_epoch" in info and "best_val_loss" in info else None


def export_best(
    module: nn.Module, model: nn.Module, best_ckpt: Path, dest: Path, info: dict[str, Any]
) -> int:
    """Load the best checkpoint's weights into ``model`` and write them as safetensors.

    Returns:
        The 1-based epoch of the checkpoint.

    Raises:
        RunFileError: The checkpoint is missing or damaged.
        DiskFullError: No room for ``dest`` (the old file, if any, is kept).
    """
    ckpt = check_checkpoint(best_ckpt, fix="train the run again")
    module.load_state_dict(ckpt["state_dict"])
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_safetensors(
        dest, tensors, metadata={"model": str(info["model"]), "num_classes": str(info["num_classes"])}
    )
    return int(ckpt["epoch"]) + 1


def _read_info(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    classes = read_classes(run_dir / "classes.json")
    return read_info(run_dir / "run.json", classes), classes


def _check_weights(path: Path, state: dict[str, Any]) -> None:
    import torch

    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CnnlabError(f"{path}: tensor {key!r} holds NaN or infinite values; restore the file or "
                              "train the run again")


def _weights_metadata(path: Path) -> dict[str, str]:
    """The metadata cnnlab writes into ``model.safetensors`` (``{}`` when unreadable: the loader says so)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception:  # a damaged header: load_file below names the damage
        return {}


def _check_agrees(run_dir: Path, cfg: TrainConfig, info: dict[str, Any], meta: dict[str, str]) -> None:
    """The run's files describe one model: run.json and model.safetensors agree with config.yaml.

    Raises:
        RunFileError: naming the file and the key that disagrees (``run.json`` saying ``"model":
            "bogus"`` was read, and the model built, from config.yaml alone).
    """
    config = run_dir / "config.yaml"
    said = [
        (run_dir / "run.json", "model", info.get("model"), cfg.model, config),
        (run_dir / "run.json", "head", info.get("head"), cfg.head.value, config),
        (run_dir / "model.safetensors", "model", meta.get("model"), cfg.model, config),
        (run_dir / "model.safetensors", "num_classes", meta.get("num_classes"),
         str(info["num_classes"]) if "num_classes" in info else None, run_dir / "run.json"),
    ]
    for path, key, value, expected, source in said:
        if value is not None and expected is not None and value != expected:
            raise RunFileError(path, f"is {value!r}, but {source.name} says {expected!r}: the files are of "
                                     "different runs", key=key)


def _check_input_rank(path: Path, size: list[int], model: Any, name: str) -> None:
    """run.json's ``image_size`` has the rank the model takes: [C, L] for a 1-D convnet, [C, H, W] else.

    Raises:
        RunFileError: naming run.json and ``image_size`` (a [C, L] size on an image model would fail
            later, inside torch, on the first input).
    """
    from ..models.base import input_rank

    rank = input_rank(model)
    series = rank == 2
    if rank is not None and len(size) != rank:
        takes = "series, [C, L]" if series else "images, [C, H, W]"
        raise RunFileError(path, f"is {size!r}, but model {name} takes {takes}", key="image_size")


def load_run(path: str | Path) -> LoadedRun:
    """Read a run folder back: the model (eval mode, best weights) and how to feed it.

    Args:
        path: A run folder written by :func:`cnnlab.train.fit`.

    Returns:
        A :class:`LoadedRun`.

    Raises:
        CnnlabError: When ``path`` is not a complete run folder.
    """
    from safetensors.torch import load_file

    from ..train.recipe import build_model, output_count

    run_dir = Path(path)
    needed = ["config.yaml", "classes.json", "run.json", "model.safetensors"]
    missing = [n for n in needed if not (run_dir / n).is_file()]
    if missing:
        raise CnnlabError(
            f"{run_dir}: not a finished cnnlab run folder (missing {', '.join(missing)}); "
            "train one with `cnnlab train`"
        )
    cfg = TrainConfig.from_yaml(run_dir / "config.yaml")
    info, classes = _read_info(run_dir)
    _check_agrees(run_dir, cfg, info, _weights_metadata(run_dir / "model.safetensors"))
    # Architecture only: the weights come from model.safetensors (never re-downloaded).
    arch = cfg.replace(pretrained=False, weights=None)
    num_classes = int(info["num_classes"]) if "num_classes" in info else output_count(cfg, len(classes))
    model = build_model(arch, in_chans=int(info["in_chans"]), num_classes=num_classes)
    _check_input_rank(run_dir / "run.json", info["image_size"], model, str(cfg.model))
    try:
        state = load_file(str(run_dir / "model.safetensors"))
    except Exception as exc:  # any reader failure (truncated, not safetensors) is a damaged file
        raise CnnlabError(
            f"{run_dir / 'model.safetensors'}: damaged, cannot be read ({exc}); restore the file or "
            "train the run again"
        ) from None
    _check_weights(run_dir / "model.safetensors", state)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        weights = run_dir / "model.safetensors"
        raise CnnlabError(f"{weights}: does not fit model {cfg.model} ({first})") from None
    model.eval()
    return LoadedRun(
        model=model,
        classes=list(classes),
        config=cfg,
        mean=tuple(info["mean"]),
        std=tuple(info["std"]),
        image_size=tuple(info["image_size"]),  # type: ignore[arg-type]
        path=run_dir,
        num_classes=num_classes,
    )
