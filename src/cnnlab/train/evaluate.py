"""Evaluate a trained run on a dataset, and predict the classes of image files.

:func:`evaluate` gives accuracy, mean loss, per-class precision/recall/F1 (scikit-learn), the
confusion matrix and the examples with the highest loss; :func:`predict` gives the top-k classes of
images, preprocessed exactly as the training data was (same decoder, same resize, same normalisation).

Importing this module does not import torch (``cnnlab predict RUN missing.jpg`` says so at once).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ArgumentError, DataError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..data import DataBundle, ImageTensorDataset
    from ..data.transforms import Preprocess
    from ..runfolder.folder import LoadedRun
    from ..source import ModelSource


class Classifier(Protocol):
    """What :func:`predict` needs of a model: a run folder read back or any resolved model source."""

    @property
    def model(self) -> nn.Module: ...

    @property
    def classes(self) -> list[str]: ...

    @property
    def binary(self) -> bool: ...

    @property
    def preprocess(self) -> Preprocess: ...

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass
class EvalResult:
    """Evaluation of a run on one dataset split.

    Attributes:
        accuracy: Fraction of correct predictions.
        loss: Mean loss (cross-entropy, or binary cross-entropy for a one-logit model).
        per_class: ``{class: {"precision", "recall", "f1", "support"}}``.
        confusion: ``confusion[true][predicted]`` counts, classes in the run's order.
        top_losses: The highest-loss examples: ``{"path" or "index", "label", "predicted", "loss",
            "confidence"}`` (confidence: the probability of the predicted class).
        classes: Class names (row/column order of ``confusion``).
    """

    accuracy: float
    loss: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    top_losses: list[dict[str, Any]]
    classes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The stable ``cnnlab evaluate --json`` document."""
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "per_class": self.per_class,
            "confusion": self.confusion,
            "top_losses": self.top_losses,
        }

    def _repr_html_(self) -> str:
        """Accuracy, loss, per-class table and confusion matrix (:func:`cnnlab.report.evaluation_html`)."""
        from .._show import html_of

        return html_of(self)


@dataclass
class Prediction:
    """Top-k classes of one image.

    Attributes:
        path: The image file (or ``"#<index>"`` for in-memory images).
        top_k: ``[(class, probability), ...]``, most probable first.
    """

    path: str
    top_k: list[tuple[str, float]]

    def to_dict(self) -> dict[str, Any]:
        """``{"path", "predictions": [{"class", "probability"}]}`` (``cnnlab predict --json``)."""
        return {"path": self.path, "predictions": [{"class": c, "probability": p} for c, p in self.top_k]}


def _logits(run: Classifier, images: torch.Tensor) -> torch.Tensor:
    import torch

    device = next(run.model.parameters()).device
    with torch.inference_mode():
        return run.model(run.preprocess.normalize(images.to(device))).float().cpu()


def probabilities(run: Classifier, logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``[N, len(classes)]`` (a one-logit model gives ``[1 - p, p]``)."""
    import torch

    if run.binary:
        p = torch.sigmoid(logits.reshape(-1))
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)


def _batches(dataset: ImageTensorDataset, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    import torch

    n = len(dataset)
    for start in range(0, n, batch_size):
        yield dataset.get_batch(torch.arange(start, min(start + batch_size, n)))


def _check_compatible(run: LoadedRun, dataset: ImageTensorDataset, spec: str) -> torch.Tensor:
    """Map the dataset's labels onto the run's class order; clear errors when they cannot match."""
    import torch

    shape = tuple(dataset.images.shape[1:])
    if shape != tuple(run.image_size):
        raise DataError(
            f"{spec}: images are {list(shape)}, the run was trained on {list(run.image_size)}; "
            "give data of the same kind",
            param="data",
        )
    unknown = sorted(set(dataset.classes) - set(run.classes))
    if unknown:
        raise DataError(
            f"{spec}: classes {', '.join(unknown[:5])} are not among the run's classes "
            f"({', '.join(run.classes[:10])}); evaluate on data with the run's classes",
            param="data",
        )
    mapping = torch.tensor([run.classes.index(c) for c in dataset.classes], dtype=torch.int64)
    return mapping[dataset.labels]


def load_eval_data(run: LoadedRun, spec: str | None = None) -> tuple[ImageTensorDataset, str]:
    """The split to evaluate: the run's own validation split, or the val split of ``spec``."""
    from ..data import load_data

    cfg = run.config
    series = len(run.image_size) == 2  # (C, L): series are read as they are, no size or colour mode
    c, h = run.image_size[0], (None if series else run.image_size[1])
    grey = None if series else c == 1
    if spec is None:
        bundle: DataBundle = load_data(
            cfg.data,
            data_dir=cfg.data_dir,
            img_size=h,
            val_split=cfg.val_split,
            seed=cfg.seed,
            limit=cfg.limit,
            grayscale=grey,
        )
        return bundle.val, cfg.data
    bundle = load_data(
        spec, data_dir=cfg.data_dir, img_size=h, val_split=cfg.val_split, seed=cfg.seed, grayscale=grey
    )
    return bundle.val, spec


def evaluate(
    run: LoadedRun,
    dataset: ImageTensorDataset,
    *,
    spec: str = "data",
    batch_size: int = 256,
    top_losses: int = 10,
) -> EvalResult:
    """Evaluate ``run`` on every image of ``dataset`` (batched).

    Args:
        run: A run folder read by :func:`cnnlab.train.load_run`.
        dataset: The images and labels (its class names must be among the run's).
        spec: How the data was named (for error messages).
        batch_size: Images per forward pass.
        top_losses: How many highest-loss examples to report.

    Returns:
        An :class:`EvalResult`.
    """
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    if len(dataset) == 0:
        raise DataError(f"{spec}: no images to evaluate", param="data")
    labels = _check_compatible(run, dataset, spec)
    losses, preds, confs, start = [], [], [], 0
    for images, _ in _batches(dataset, batch_size):
        logits = _logits(run, images)
        y = labels[start : start + images.shape[0]]
        start += images.shape[0]
        if run.binary:
            logit = logits.reshape(-1)
            losses.append(F.binary_cross_entropy_with_logits(logit, y.float(), reduction="none"))
        else:
            losses.append(F.cross_entropy(logits, y, reduction="none"))
        top = probabilities(run, logits).max(dim=1)  # the predicted class and its probability
        preds.append(top.indices)
        confs.append(top.values)
    loss, pred, conf = torch.cat(losses), torch.cat(preds), torch.cat(confs)
    k = len(run.classes)
    y_true, y_pred = labels.numpy(), pred.numpy()
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(k)), zero_division=0
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(run.classes)
    }
    confusion = confusion_matrix(y_true, y_pred, labels=list(range(k))).tolist()
    order = torch.argsort(loss, descending=True, stable=True)[:top_losses].tolist()
    tops = []
    for i in order:
        where: dict[str, Any] = {"path": dataset.paths[i]} if dataset.paths is not None else {"index": i}
        tops.append(
            {
                **where,
                "label": run.classes[int(labels[i])],
                "predicted": run.classes[int(pred[i])],
                "loss": float(loss[i]),
                "confidence": float(conf[i]),
            }
        )
    return EvalResult(
        accuracy=float((pred == labels).double().mean()),
        loss=float(loss.double().mean()),
        per_class=per_class,
        confusion=[[int(v) for v in row] for row in confusion],
        top_losses=tops,
        classes=list(run.classes),
    )


def predict_series(run: Classifier, items: Sequence[str], *, top_k: int = 5, batch_size: int = 64
                   ) -> list[Prediction]:
    """Top-k classes of series: ``ucr:NAME[:INDEX]`` or files of one series (a 1-D convnet's run).

    Args:
        run: A series model (its input is (C, L)).
        items: What :func:`cnnlab.data.series.read_series_inputs` reads (a bare ``ucr:NAME``: the first 3
            validation series of each class).
        top_k: Classes per series.
        batch_size: Series run per batch.

    Returns:
        One :class:`Prediction` per series, named as given (``ucr:GunPoint:3``, the file).
    """
    from ..data.series import read_series_inputs

    series, names, _ = read_series_inputs(list(items))
    preds = predict(run, series, top_k=top_k, batch_size=batch_size)
    return [Prediction(name, p.top_k) for name, p in zip(names, preds, strict=True)]


def predict_inputs(src: ModelSource, items: Sequence[str], *, top_k: int = 5, batch_size: int = 64,
                   skipped: list[tuple[str, str]] | None = None) -> list[Prediction]:
    """Top-k classes of what a command line names: series for a 1-D convnet, else image files and folders.

    Raises:
        DataError: Series given to an image model (or a missing image file).
    """
    from ..data.series import names_series

    if len(src.image_size) == 2:
        return predict_series(src, items, top_k=top_k, batch_size=batch_size)
    if names_series(items):
        raise DataError(f"{items[0]}: a series, but {src.label} is an image model; give images, or the run "
                        "of a 1-D convnet")
    return predict(src, image_files(list(items)), top_k=top_k, batch_size=batch_size, skipped=skipped)


def image_files(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders (their image files, sorted, recursively) into a list of image paths.

    Raises:
        DataError: A missing file, a folder without images, or a run folder (its figures are not the
            images to classify: ``predict RUN --model NAME IMAGE`` classified ``curves.png`` with random
            weights).
    """
    from ..runfolder.folder import holds_run

    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir() and holds_run(p):
            raise DataError(f"{p}: a run folder, not images; to use its model give the run folder first, "
                            "without `model` (RUN IMAGE...)")
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(f"{p}: no image files in this folder; give image files or a folder of them")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder; check the IMAGE argument")
    return out


def load_images(run: Classifier, paths: Sequence[str | os.PathLike[str]]) -> torch.Tensor:
    """Decode and resize ``paths`` exactly as the training images were: uint8 ``[N, C, H, W]``."""
    return run.preprocess.load(paths)


#: From this many image files on, :func:`predict` decodes them through the decode cache (the second
#: prediction on the same folder decodes no image); fewer are decoded directly.
CACHE_MIN_FILES = 16


def _as_batches(images: Iterator[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    """Decoded uint8 images (one each) -> stacked batches of ``batch_size`` (the last may be smaller)."""
    import torch

    pending: list[torch.Tensor] = []
    for image in images:
        pending.append(image)
        if len(pending) == batch_size:
            yield torch.stack(pending)
            pending = []
    if pending:
        yield torch.stack(pending)


Skipped = list[tuple[str, str]]


def _decoded_one_by_one(
    run: Classifier, paths: list[str | os.PathLike[str]], names: list[str], skipped: Skipped | None
) -> Iterator[torch.Tensor]:
    """Each readable file's image (its name appended to ``names``); a broken one raises or is skipped."""
    from ..images import skip_reason

    for p in paths:
        try:
            image = load_images(run, [p])[0]
        except DataError as exc:
            if skipped is None:
                raise
            skipped.append((str(p), skip_reason(exc)))
            continue
        names.append(str(p))
        yield image


def _decoded_through_cache(
    run: Classifier, paths: list[str | os.PathLike[str]], names: list[str], skipped: Skipped | None,
    batch_size: int,
) -> Iterator[torch.Tensor]:
    """The files decoded once into the decode cache (memory-mapped back), sliced into batches.

    The pixels are those of :meth:`Preprocess.load` (the same :func:`~cnnlab.images.decode_image` at the
    same size); a broken file raises the error direct decoding gives, or is skipped with its reason.
    """
    import torch

    from ..data.cache import decode_files

    c, h, w = run.preprocess.image_size
    arr, ok, bad = decode_files([Path(p) for p in paths], size=(h, w), mode="L" if c == 1 else "RGB")
    failed = sorted(set(range(len(paths))) - set(ok))
    if failed and skipped is None:
        load_images(run, [paths[failed[0]]])  # raises that file's own error, as direct decoding does
        raise DataError(f"{paths[failed[0]]}: {bad[0].reason}; fix or remove the file")
    if skipped is not None:
        skipped.extend((str(paths[i]), s.reason) for i, s in zip(failed, bad, strict=True))
    names.extend(str(paths[i]) for i in ok)
    for start in range(0, len(ok), batch_size):
        yield torch.from_numpy(arr[start : start + batch_size])


def predict(
    run: Classifier,
    images: Sequence[str | os.PathLike[str]] | torch.Tensor,
    *,
    top_k: int = 5,
    batch_size: int = 64,
    skipped: list[tuple[str, str]] | None = None,
    use_cache: bool | None = None,
) -> list[Prediction]:
    """Top-k classes of image files (or of a uint8 ``[N, C, H, W]`` tensor at the run's size), batched.

    Batches run under ``inference_mode``, channels-last on the CPU (the layout oneDNN convolves
    fastest). With a run's own preprocessing (not a pretrained model's crop) the files are decoded
    through the decode cache (:func:`cnnlab.data.cache.decode_files`), so predicting on the same
    folder again decodes nothing; the predictions are the same with and without it.

    Args:
        run: A run folder read by :func:`cnnlab.train.load_run`, or a :class:`cnnlab.source.ModelSource`.
        images: Image paths, or uint8 images already at the model's input size.
        top_k: Classes per image (capped at the number of classes).
        batch_size: Images run per batch.
        skipped: If given, files that cannot be decoded are left out and appended here as
            ``(path, reason)``; by default the first such file raises a :class:`DataError`.
        use_cache: Decode files through the decode cache; None (default): from
            :data:`CACHE_MIN_FILES` files on. Ignored for a pretrained model's preprocessing.

    Returns:
        One :class:`Prediction` per (readable) image, in input order.
    """
    import torch

    from .._layout import channels_last

    if top_k < 1:
        raise ArgumentError("must be at least 1", param="top_k")
    if batch_size < 1:
        raise ArgumentError("must be at least 1", param="batch_size")
    k = min(top_k, len(run.classes))
    names: list[str] = []
    chunks: Iterator[torch.Tensor]
    if isinstance(images, torch.Tensor):
        names = [f"#{i}" for i in range(images.shape[0])]
        chunks = (images[i : i + batch_size] for i in range(0, images.shape[0], batch_size))
    else:
        paths = list(images)
        cached = len(paths) >= CACHE_MIN_FILES if use_cache is None else use_cache
        if cached and run.preprocess.weights is None:
            chunks = _decoded_through_cache(run, paths, names, skipped, batch_size)
        else:
            chunks = _as_batches(_decoded_one_by_one(run, paths, names, skipped), batch_size)
    device = next(run.model.parameters()).device
    out: list[Prediction] = []
    with channels_last(run.model, enabled=device.type == "cpu"):
        for chunk in chunks:
            nhwc = device.type == "cpu" and chunk.ndim == 4  # images; series [N, C, L] stay as they are
            x = chunk.contiguous(memory_format=torch.channels_last) if nhwc else chunk
            probs = probabilities(run, _logits(run, x))
            values, index = probs.topk(k, dim=1)
            for row_v, row_i in zip(values.tolist(), index.tolist(), strict=True):
                top = [(run.classes[j], float(v)) for v, j in zip(row_v, row_i, strict=True)]
                out.append(Prediction(names[len(out)], top))
    return out
