"""Embedding cache for ``--transfer features``: run the frozen backbone once, train the head many times.

What is cached is exactly what the trainable part of the head consumes. :func:`split_head` cuts
``model.head`` into a parameter-free prefix (global pooling, flatten) and the rest, so that
``model.forward_head(f) == rest(prefix(f))``; the cache holds ``prefix(forward_features(x))`` (pooled:
1,280 floats per image for efficientnet_lite0 instead of 62,720) and :class:`EmbeddingHead` trains
``rest``, whose parameters *are* ``model.head``'s. The backbone runs in eval mode, as the freezing
policy runs it during training, so training on the cache gives the result of training without it
(same batches, same seed) up to float rounding of the batched convolutions.

The cache file (safetensors, ``embeddings`` + ``labels``) is keyed by a hash of: the model name and
weights source given by the caller, the backbone's actual weights (state dict bytes), the head prefix,
the normalisation, and the dataset's image tensor and labels (which covers the file list, resizing and
the split). Any change gives a new file; nothing stale is ever read.

Use :func:`use_embedding_cache` to decide: the cache is exact only without augmentation, without a
fine-tune schedule and without ``--train-bn``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from .._io import save_safetensors
from ..errors import TrainingError
from .heads import _head

__all__ = [
    "EmbeddingHead",
    "Embeddings",
    "LogRegHead",
    "compute_embeddings",
    "default_cache_dir",
    "embedding_datamodule",
    "fit_logreg_head",
    "progress_bar",
    "split_head",
    "use_embedding_cache",
]

_CACHE_VERSION = "1"


def _cacheable(m: nn.Module) -> bool:
    """No parameters, no buffers, no dropout: the same output in train and eval mode, nothing to learn."""
    if any(True for _ in m.parameters()) or any(True for _ in m.buffers()):
        return False
    return not any(isinstance(sub, nn.modules.dropout._DropoutNd) for sub in m.modules())


class _ForwardHead(nn.Module):
    """``model.forward_head`` as a module that registers only ``model.head``'s parameters."""

    _model: Any

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.head = _head(model)
        object.__setattr__(self, "_model", model)  # not a submodule: the backbone's params stay out

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self._model.forward_head(f))


def split_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Split the head into ``(prefix, rest)`` with ``model.forward_head(f) == rest(prefix(f))``.

    ``prefix`` is the longest run of leading modules of an ``nn.Sequential`` head that hold no
    parameters, no buffers and no dropout (global pooling, flatten: they act the same in train and
    eval mode, so their output can be cached); ``rest`` holds every parameter of the head (trained).
    A model that overrides ``forward_head`` keeps its head whole: ``prefix`` is the identity.
    """
    from ..models.base import CNNLabModel

    head = _head(model)
    own_forward_head = getattr(type(model), "forward_head", None) is not CNNLabModel.forward_head
    if own_forward_head or not isinstance(head, nn.Sequential):
        return nn.Identity(), (_ForwardHead(model) if own_forward_head else head)
    n = 0
    for m in head:
        if not _cacheable(m):
            break
        n += 1
    return nn.Sequential(*head[:n]), nn.Sequential(*head[n:])


class EmbeddingHead(nn.Module):
    """What :class:`~cnnlab.train.module.ClassifierModule` trains on cached embeddings.

    ``forward_head(e)`` (and ``forward(e)``) run the head after its pooling prefix; the parameters
    are ``model.head``'s own, so training this trains the model's head in place.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.rest = split_head(model)[1]

    def forward_head(self, e: torch.Tensor) -> torch.Tensor:
        return self.rest(e)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.rest(e)


@dataclass
class Embeddings:
    """Embeddings of one dataset split. Unpacks as ``features, labels = compute_embeddings(...)``.

    Attributes:
        features: float32 ``[N, D]`` (or ``[N, ...]`` when the head has no pooling prefix).
        labels: int64 ``[N]``.
        path: The cache file (``None`` when caching was off).
        cache_hit: Read from the cache rather than computed.
    """

    features: torch.Tensor
    labels: torch.Tensor
    path: Path | None = None
    cache_hit: bool = False

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield self.features
        yield self.labels


def default_cache_dir() -> Path:
    """``$CNNLAB_CACHE_DIR/embeddings``, else ``~/.cache/cnnlab/embeddings``."""
    root = os.environ.get("CNNLAB_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "cnnlab") / "embeddings"


def _hash_tensor(h: Any, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}:{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")


def _backbone_digest(model: nn.Module) -> str:
    h = hashlib.blake2b(digest_size=16)
    head_prefix = "head."
    for name, t in model.state_dict().items():
        if not name.startswith(head_prefix):
            h.update(name.encode())
            _hash_tensor(h, t)
    return h.hexdigest()


def _normalize(mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    from ..data.transforms import Normalize  # the data module's own: the cache sees what training sees

    return Normalize(mean, std)


def _batches(dataset: Any, batch_size: int) -> Any:
    n = len(dataset)
    for start in range(0, n, batch_size):
        index = torch.arange(start, min(start + batch_size, n))
        if hasattr(dataset, "get_batch"):
            yield dataset.get_batch(index)
        else:
            yield dataset.images[index], dataset.labels[index]


def compute_embeddings(
    model: nn.Module,
    dataset: Any,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 64,
    cache_dir: str | os.PathLike[str] | None = None,
    key_parts: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Embeddings:
    """Embeddings ``prefix(model.forward_features(normalize(x)))`` of every image, cached on disk.

    Args:
        model: A cnnlab model; run in eval mode without gradients (its mode is restored afterwards).
        dataset: An ``ImageTensorDataset`` (uint8 ``images`` ``[N,C,H,W]``, ``labels``, ``get_batch``).
        mean: Normalisation mean (as the training data module uses).
        std: Normalisation std.
        batch_size: Images per forward pass.
        cache_dir: Cache folder; ``None`` disables the cache.
        key_parts: Extra identity of the run (model name, weights source ...), part of the key.
        progress: Called with ``(images done, total)`` after every batch of a computation.

    Returns:
        :class:`Embeddings` (unpacks to ``(features, labels)``).
    """
    prefix, _ = split_head(model)
    labels = torch.as_tensor(dataset.labels).long()
    path = None
    if cache_dir is not None:
        h = hashlib.blake2b(digest_size=16)
        ident = {"version": _CACHE_VERSION, "parts": key_parts or {}, "backbone": _backbone_digest(model),
                 "prefix": repr(prefix), "mean": list(mean), "std": list(std)}
        h.update(json.dumps(ident, sort_keys=True, default=str).encode())
        _hash_tensor(h, torch.as_tensor(dataset.images))
        _hash_tensor(h, labels)
        name = str((key_parts or {}).get("model", type(model).__name__)).replace(":", "-").replace("/", "-")
        path = Path(cache_dir) / f"{name}-{h.hexdigest()}.safetensors"
        if path.is_file():
            from safetensors.torch import load_file

            try:
                stored = load_file(str(path))
                return Embeddings(stored["embeddings"], stored["labels"], path, cache_hit=True)
            except Exception:  # a damaged cache file is recomputed, never trusted
                pass
    device = next(model.parameters()).device
    normalize = _normalize(mean, std).to(device)
    was_training = model.training
    model.eval()
    forward_features = cast(Any, model).forward_features
    chunks, done = [], 0
    try:
        with torch.inference_mode():
            for x, _y in _batches(dataset, batch_size):
                chunks.append(prefix(forward_features(normalize(x.to(device)))).float().cpu())
                done += x.shape[0]
                if progress is not None:
                    progress(done, len(dataset))
    finally:
        model.train(was_training)
    features = torch.cat(chunks) if chunks else torch.empty(0)
    if path is not None:
        meta = {"key": json.dumps(key_parts or {}, sort_keys=True, default=str), "images": str(len(dataset))}
        save_safetensors(path, {"embeddings": features, "labels": labels}, metadata=meta)
    return Embeddings(features, labels, path, cache_hit=False)


@contextlib.contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr for :func:`compute_embeddings` (``progress=``); ``None`` if disabled.

    Example:
        >>> with progress_bar("embeddings: train") as update:
        ...     emb = compute_embeddings(model, ds, mean=m, std=s, progress=update)
    """
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def use_embedding_cache(cfg: Any) -> bool:
    """Whether ``features`` training can run on cached embeddings (exactly) for this config.

    Raises:
        TrainingError: ``--head logreg`` in a setting where embeddings are not fixed.
    """
    if str(cfg.transfer) != "features":
        return False
    fixed = str(cfg.augment) == "none" and not cfg.train_bn and not cfg.fine_tune_epochs
    if str(cfg.head) == "logreg" and not fixed:
        raise TrainingError("--head logreg trains on fixed embeddings: use --augment none and no --train-bn")
    return fixed


@dataclass
class _Pairs:
    """(embedding, label) pairs with the ``get_batch`` that ``SliceBatches`` reads."""

    features: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def get_batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features.index_select(0, index), self.labels.index_select(0, index)


def embedding_datamodule(train: Embeddings, val: Embeddings, *, batch_size: int, seed: int = 0) -> Any:
    """A ``LightningDataModule`` of ``(embedding float32, label int64)`` batches.

    The batches come from the image data module's own loader (``SliceBatches``) with the same
    arguments, so the order of samples (shuffle per ``seed + epoch``, DDP shards with padding, the
    dropped single-sample last batch) is exactly the one training on images would see.
    """
    import lightning as L

    from ..data.datamodule import SliceBatches

    class EmbeddingDataModule(L.LightningDataModule):
        train_set, val_set = train, val

        def _rank(self) -> tuple[int, int]:
            trainer = getattr(self, "trainer", None)
            return (int(trainer.global_rank), int(trainer.world_size)) if trainer is not None else (0, 1)

        def train_dataloader(self) -> SliceBatches:
            rank, world = self._rank()
            return SliceBatches(_Pairs(train.features, train.labels), batch_size=batch_size,  # type: ignore[arg-type]
                                shuffle=True, seed=seed, rank=rank, world_size=world, pad=True)

        def val_dataloader(self) -> SliceBatches:
            rank, world = self._rank()
            return SliceBatches(_Pairs(val.features, val.labels), batch_size=batch_size,  # type: ignore[arg-type]
                                shuffle=False, rank=rank, world_size=world)

    return EmbeddingDataModule()


def fit_logreg_head(model: nn.Module, train: Embeddings, *, num_classes: int, c: float = 1.0,
                    max_iter: int = 2000, seed: int = 0) -> dict[str, float]:
    """``--head logreg``: scikit-learn ``LogisticRegression`` on the embeddings, written into the head.

    The features are standardised (``StandardScaler``) for the solver and the scaling is folded into
    the linear layer, so the model stays an ordinary network: ``forward_head(e)`` gives the logistic
    regression's decision function (1 output: the binary logit; K outputs: the multinomial logits).

    Args:
        model: A cnnlab model whose head after the pooling prefix is a single linear layer (with
            parameter-free modules such as dropout around it).
        train: Training embeddings.
        num_classes: Outputs of the head (1 = binary logit).
        c: Inverse regularisation strength.
        max_iter: Solver iterations.
        seed: ``random_state`` of the solver.

    Returns:
        ``{"train_acc", "n_iter"}`` of the fitted classifier.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    _, rest = split_head(model)
    linears = [m for m in rest.modules() if isinstance(m, nn.Linear)]
    if len(linears) != 1:
        raise TrainingError("--head logreg needs a head with one linear layer; use --head linear or mlp")
    linear = linears[0]
    x = train.features.reshape(len(train.features), -1).double().numpy()
    y = train.labels.numpy()
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit(scaler.transform(x), y)
    coef = torch.from_numpy(clf.coef_ / scaler.scale_)
    bias = torch.from_numpy(clf.intercept_) - coef @ torch.from_numpy(scaler.mean_)
    if coef.shape[0] == 1 and num_classes == 2:  # sklearn's binary form -> two logits (-z/2, z/2)
        coef, bias = torch.cat([-coef / 2, coef / 2]), torch.cat([-bias / 2, bias / 2])
    if coef.shape[0] != linear.out_features:
        raise TrainingError(
            f"--head logreg: {coef.shape[0]} classes in the data, the head has {linear.out_features} outputs"
        )
    with torch.no_grad():
        linear.weight.copy_(coef.to(linear.weight.dtype))
        if linear.bias is not None:
            linear.bias.copy_(bias.to(linear.bias.dtype))
    return {"train_acc": float(clf.score(scaler.transform(x), y)), "n_iter": float(max(clf.n_iter_))}


def _callback_base() -> type:
    import lightning as L

    return L.Callback


class LogRegHead(_callback_base()):  # type: ignore[misc]
    """``--head logreg`` inside a normal run: fit the head in closed form, then only measure it.

    At train start the logistic regression is fitted on the training embeddings and written into
    ``model``'s head (:func:`fit_logreg_head`); every optimizer group's learning rate is then set to 0
    and schedulers are dropped, so the epochs that follow leave the head unchanged and just record its
    training/validation loss and accuracy (``metrics.csv``, checkpoints and ``model.safetensors`` as
    usual). Refitting on ``--resume`` gives the same weights (deterministic solver, fixed seed).

    Args:
        model: The cnnlab model whose head is fitted.
        train: Training embeddings (``EmbeddingDataModule.train_set``).
        num_classes: Head outputs (1 = binary logit).
        seed: Solver seed.
    """

    def __init__(self, model: nn.Module, train: Embeddings, *, num_classes: int, seed: int = 0) -> None:
        super().__init__()
        self.model, self.train, self.num_classes, self.seed = model, train, num_classes, seed
        self.fit_info: dict[str, float] = {}

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.fit_info = fit_logreg_head(self.model, self.train, num_classes=self.num_classes, seed=self.seed)
        for opt in trainer.optimizers:
            for group in opt.param_groups:
                group["lr"] = 0.0
        trainer.strategy.lr_scheduler_configs = []
