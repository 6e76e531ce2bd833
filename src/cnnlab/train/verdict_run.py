"""The verdict of a run folder: its inputs gathered (metrics, evaluation, data, embeddings), then judged.

:mod:`cnnlab.train.verdict` holds the checks on plain data; this module reads them from a run:
``metrics.csv``, an evaluation of the kept weights on the validation split, the training split's class
counts and, for a pretrained backbone, its embeddings of both splits (from the embedding cache that
``--transfer features`` filled, else computed once and cached). ``fit`` calls :func:`verdict_after_fit`
at the end of training; ``cnnlab evaluate`` and the report call :func:`run_verdict`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from ..errors import CnnlabError
from .verdict import Status, Verdict, judge, near_duplicates

if TYPE_CHECKING:
    import torch

    from ..data import DataBundle, ImageTensorDataset
    from ..runfolder.folder import LoadedRun
    from .config import TrainConfig
    from .evaluate import EvalResult

__all__ = [
    "ProgressFn", "evaluation_verdict", "phase_progress", "read_verdict", "run_verdict", "train_split",
    "verdict_after_fit",
]

#: ``progress(phase, done, total)``.
ProgressFn = Callable[[str, int, int], None]


def _embeddings(run: LoadedRun, dataset: ImageTensorDataset, work: str,
                progress: ProgressFn | None) -> torch.Tensor:
    """The pretrained backbone's pooled embeddings of ``dataset``: the training cache's, else computed."""
    from ..transfer.embeddings import compute_embeddings, default_cache_dir

    cfg = run.config
    key = {"model": cfg.model, "weights": str(cfg.weights or cfg.pretrained)}  # fit's key: the same file
    cache = cfg.cache_dir or default_cache_dir()
    return compute_embeddings(run.model, dataset, mean=run.mean, std=run.std, cache_dir=cache, key_parts=key,
                              progress=(lambda d, t: progress(work, d, t)) if progress else None).features


def run_verdict(
    run: LoadedRun,
    evaluation: EvalResult,
    *,
    train: ImageTensorDataset | None = None,
    val: ImageTensorDataset | None = None,
    progress: ProgressFn | None = None,
) -> Verdict:
    """:func:`judge` a run folder: its ``metrics.csv``, an evaluation of its kept weights, its data.

    Args:
        run: The run folder read back (:func:`cnnlab.train.load_run`).
        evaluation: :func:`cnnlab.train.evaluate.evaluate` of ``run`` on ``val``.
        train: The training split (class counts; with ``val``, the leakage check of a pretrained backbone).
        val: The evaluated split.
        progress: Called with ``(phase, done, total)`` while embeddings are computed.

    Returns:
        The :class:`Verdict`.
    """
    from .callbacks import read_metrics

    cfg = run.config
    metrics = run.path / "metrics.csv"
    rows = read_metrics(metrics) if metrics.is_file() else []
    counts = None
    if train is not None:
        labels = train.labels.tolist()
        counts = {c: labels.count(i) for i, c in enumerate(train.classes)}
    pairs: list[tuple[str, str, float]] = []
    from ..transfer.embeddings import use_embedding_cache

    # The leakage check reads the embeddings `transfer` features cached (a pretrained, frozen backbone's).
    if use_embedding_cache(cfg) and train is not None and val is not None and train.paths and val.paths:
        pairs = near_duplicates(_embeddings(run, train, "embeddings: train", progress),
                                _embeddings(run, val, "embeddings: val", progress), train.paths, val.paths)
    best = None
    try:
        import json

        best = json.loads((run.path / "run.json").read_text()).get("best_epoch")
    except (OSError, ValueError):
        pass
    return judge(rows, classes=run.classes, accuracy=evaluation.accuracy, confusion=evaluation.confusion,
                 top_losses=evaluation.top_losses, train_counts=counts, duplicates=pairs, kept_epoch=best,
                 pretrained=cfg.pretrained, lr=cfg.lr, run=str(run.path), series=len(run.image_size) == 2,
                 backbone=_backbone_suits(cfg))


def _backbone_suits(cfg: TrainConfig) -> bool:
    """Would a run on ``cfg``'s data get the pretrained backbone by default (photos, not MNIST-like data)?"""
    from .defaults import default_choice

    try:
        return default_choice(str(cfg.data), cfg.img_size).pretrained
    except (CnnlabError, OSError):  # the data is not reachable any more: say what fits photos
        return True


def phase_progress() -> ProgressFn:
    """``progress(phase, done, total)`` on stderr: a line when a phase starts and per ~10% of it."""
    from .._progress import plain_lines

    reporters: dict[str, Callable[[int, int], None]] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in reporters:
            reporters[phase] = plain_lines(phase)
        reporters[phase](done, total)

    return update


def train_split(run: LoadedRun) -> ImageTensorDataset:
    """The run's own training split, loaded as the evaluation loads its validation split."""
    from ..data import load_data

    cfg, (c, h, _) = run.config, run.image_size
    return load_data(cfg.data, data_dir=cfg.data_dir, img_size=h, val_split=cfg.val_split, seed=cfg.seed,
                     limit=cfg.limit, grayscale=c == 1).train


def verdict_after_fit(run_dir: Path, bundle: DataBundle, *, progress: ProgressFn | None = None) -> Verdict:
    """The verdict at the end of ``fit``: the kept weights evaluated on the run's validation split.

    The verdict is also written into ``run.json`` (``verdict``), where the report finds it.

    Args:
        run_dir: The finished run folder.
        bundle: The run's data (as trained on).
        progress: Called with ``(phase, done, total)``.

    Returns:
        The :class:`Verdict`.
    """
    from .._io import write_json
    from ..runfolder.folder import load_run
    from .evaluate import evaluate

    run = load_run(run_dir)
    if progress is not None:
        progress("evaluating the kept weights", 0, len(bundle.val))
    evaluation = evaluate(run, bundle.val, spec=str(run.config.data))
    if progress is not None:
        progress("evaluating the kept weights", len(bundle.val), len(bundle.val))
    verdict = run_verdict(run, evaluation, train=bundle.train, val=bundle.val, progress=progress)
    try:  # recorded for the report; a full disk here loses the record, not the finished run
        info = json.loads((run_dir / "run.json").read_text())
        write_json(run_dir / "run.json", {**info, "verdict": verdict.to_dict()})
    except (OSError, ValueError):
        pass
    return verdict


def read_verdict(run_dir: Path) -> dict[str, Any] | None:
    """The newest verdict recorded in a run folder, ``evaluation.json``'s or ``run.json``'s (None if neither).

    ``run.json`` is rewritten by a resumed training after an evaluation, so the newer file's verdict is the
    one of the weights the folder holds.

    Raises:
        RunFileError: A recorded ``verdict`` that is not what cnnlab writes (naming the file and key).
    """
    from ..runfolder.schema import RunFileError

    found: list[tuple[float, Path, Any]] = []
    for name in ("evaluation.json", "run.json"):
        path = run_dir / name
        try:
            doc = json.loads(path.read_text())
            when = path.stat().st_mtime
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and "verdict" in doc:
            found.append((when, path, doc["verdict"]))
    if not found:
        return None
    _, path, recorded = max(found, key=lambda f: f[0])
    try:
        verdict = Verdict.from_dict(recorded)
        if verdict.status not in get_args(Status):
            raise ValueError(f"status {verdict.status!r}")
        return verdict.to_dict()  # formats the numbers: a string accuracy fails here
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunFileError(path, f"is not a verdict cnnlab wrote ({type(exc).__name__}: {exc})",
                           key="verdict") from None


def evaluation_verdict(
    run: LoadedRun, evaluation: EvalResult, val: ImageTensorDataset, *, own_data: bool = True,
    progress: ProgressFn | None = None,
) -> Verdict:
    """The verdict of ``cnnlab evaluate``: on the run's own data with its training split, else ``val`` alone.

    Args:
        run: The run folder read back.
        evaluation: The evaluation of ``run`` on ``val``.
        val: The evaluated split.
        own_data: ``val`` is the run's own validation split (its training split is then loaded too: class
            counts, leakage).
        progress: Called with ``(phase, done, total)``.

    Returns:
        The :class:`Verdict`.
    """
    images = len(run.image_size) == 3  # a series run's split is read by cnnlab.data.series, not here
    train = train_split(run) if own_data and images else None
    return run_verdict(run, evaluation, train=train, val=val if own_data else None, progress=progress)
