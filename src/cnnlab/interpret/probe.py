"""Linear probes by depth: "deeper layers separate the classes", measured (Alain & Bengio, 2016).

For each stage of a trained network (its ``blocks``, else the children of ``model.features``) the
stage's output is globally average-pooled to one number per channel, and a logistic regression
(scikit-learn, on standardised features) is trained on the training split and scored on the
validation split. The input itself, pooled the same way, is depth 0 (a floor: mean brightness
per channel), and when the head has hidden layers the input of the final linear layer (what the
classifier itself separates) is the last point. The pooled features of every stage come from one
forward pass per batch and are cached with :func:`cnnlab.transfer.embeddings.compute_embeddings` (keyed by the
weights and the images), so a second probe of the same run reads them back in a fraction of a second.

The 2-D maps of the last embedding are scikit-learn's PCA and t-SNE of the validation features.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..errors import ArgumentError, ModelError
from ..values import check_seed

if TYPE_CHECKING:
    from ..data import DataBundle
    from ..runfolder.folder import LoadedRun

__all__ = ["ProbeResult", "StageFeatures", "load_run_data", "probe_run", "probe_stages"]

INPUT = "input"


def _pooled(t: torch.Tensor) -> torch.Tensor:
    return t.mean((-2, -1)) if t.dim() == 4 else t.flatten(1)


def _classifier_name(model: nn.Module) -> str | None:
    """The final linear layer's name when the head has hidden layers (else its input is the last stage)."""
    from ..models.surgery import classifier_layer

    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module) or sum(isinstance(m, nn.Linear) for m in head.modules()) < 2:
        return None
    try:
        layer = classifier_layer(model)
    except ModelError:
        return None
    return next(n for n, m in model.named_modules() if m is layer)


def probe_stages(model: nn.Module) -> list[str]:
    """The points probed, in depth order: ``"input"``, each stage, and the final linear layer's input.

    Stages are ``model.blocks`` when the model lists them, else the children of ``model.features``.
    The last entry is ``"<classifier> input"`` when the head has hidden layers.
    """
    blocks = list(getattr(model, "blocks", []) or [])
    if not blocks and isinstance(getattr(model, "features", None), nn.Module):
        blocks = [f"features.{n}" for n, _ in model.features.named_children()]  # type: ignore[union-attr]
    cls = _classifier_name(model)
    return [INPUT, *blocks, *([f"{cls} input"] if cls else [])]


class StageFeatures(nn.Module):
    """A model seen as its pooled stage outputs side by side: ``forward_features(x) -> [N, sum(dims)]``.

    It follows the model contract that :func:`cnnlab.transfer.embeddings.compute_embeddings` caches
    (``forward_features`` and an empty, parameter-free ``head``), so the probe's features are cached
    with the same keys (the weights, the normalisation, the images) as the transfer-learning cache.
    """

    plain_forward_head = True

    def __init__(self, model: nn.Module, stages: list[str]) -> None:
        super().__init__()
        self.model = model
        self.stages = list(stages)
        self.head = nn.Sequential()

    def pooled(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The pooled output ``[N, C_s]`` of every stage for the (normalised) input ``x``.

        Hooks pool each stage's output as it is produced (no copy of the full maps is kept); they are
        removed when the forward pass ends, also on error.
        """
        seen: dict[str, torch.Tensor] = {INPUT: _pooled(x)}
        handles = []
        try:
            for s in self.stages:
                if s.endswith(" input"):
                    module = self.model.get_submodule(s.removesuffix(" input"))
                    handles.append(module.register_forward_pre_hook(
                        lambda _m, args, s=s: seen.__setitem__(s, _pooled(args[0]).detach())))
                elif s != INPUT:
                    handles.append(self.model.get_submodule(s).register_forward_hook(
                        lambda _m, _a, out, s=s: seen.__setitem__(s, _pooled(out).detach())))
            self.model(x)
        finally:
            for h in handles:
                h.remove()
        return [seen[s] for s in self.stages]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Every stage's pooled output side by side: ``[N, sum of channels]``."""
        return torch.cat(self.pooled(x), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


@dataclass
class ProbeResult:
    """Probe accuracy by depth and 2-D maps of the last embedding.

    Attributes:
        stages: The points probed, in depth order (see :func:`probe_stages`).
        dims: Feature dimension of each point (channels, after pooling).
        train_accuracy: Probe accuracy on the training split, per point.
        val_accuracy: Probe accuracy on the validation split, per point.
        chance: Accuracy of guessing the most frequent validation class.
        classes: Class names (the colours of the maps).
        map_labels: [M] class of each mapped validation image.
        pca: [M, 2] the last embedding projected on its first two principal components.
        pca_variance: Fraction of the variance those two components explain.
        tsne: [M, 2] the t-SNE map of the same points (None when not computed).
        cached: The features were read from the cache.
    """

    stages: list[str]
    dims: list[int]
    train_accuracy: list[float]
    val_accuracy: list[float]
    chance: float
    classes: list[str]
    map_labels: np.ndarray
    pca: np.ndarray
    pca_variance: float
    tsne: np.ndarray | None = None
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``cnnlab probe --json``)."""
        return {
            "stages": [{"name": s, "dim": d, "train_accuracy": round(tr, 6), "val_accuracy": round(va, 6)}
                       for s, d, tr, va in zip(self.stages, self.dims, self.train_accuracy, self.val_accuracy,
                                               strict=True)],
            "chance": round(self.chance, 6), "map_points": len(self.map_labels),
            "pca_variance": round(self.pca_variance, 6), "cached": self.cached,
        }


def load_run_data(run: LoadedRun, spec: str | None = None, *, limit: int | None = None) -> DataBundle:
    """Both splits of a run's own data (as it was trained: size, split, seed), or of ``spec``.

    Raises:
        DataError: ``spec``'s classes are not the run's.
    """
    from ..data import load_data
    from ..errors import DataError

    cfg = run.config
    c, h, _ = run.image_size
    bundle = load_data(spec or cfg.data, data_dir=cfg.data_dir, img_size=h, val_split=cfg.val_split,
                       seed=cfg.seed, limit=limit if limit is not None else cfg.limit, grayscale=c == 1)
    if list(bundle.classes) != list(run.classes):
        raise DataError(f"{spec}: its classes ({', '.join(bundle.classes[:5])}, ...) are not the run's "
                        f"({', '.join(run.classes[:5])}, ...); probe on data with the run's classes",
                        param="data")
    return bundle


def _fit_probe(train: np.ndarray, y_train: np.ndarray, val: np.ndarray, y_val: np.ndarray,
               seed: int) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(train, y_train)
    return float(clf.score(train, y_train)), float(clf.score(val, y_val))


def probe_run(
    run: LoadedRun,
    bundle: DataBundle,
    *,
    map_points: int = 1000,
    tsne: bool = True,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ProbeResult:
    """Linear probes on the pooled output of every stage of a run, and maps of its last embedding.

    Args:
        run: A run folder read by :func:`cnnlab.train.load_run`.
        bundle: Its data (``train`` fits the probes, ``val`` scores them and is mapped).
        map_points: Validation images in the 2-D maps (the first ones, in dataset order).
        tsne: Also compute the t-SNE map (seconds for 1,000 points).
        seed: Seed of the probes and of t-SNE.
        cache_dir: Embedding cache folder (None: no cache).
        progress: Called with ``(images done, total)`` while features are computed.

    Returns:
        A :class:`ProbeResult`.
    """
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    from ..transfer.embeddings import compute_embeddings

    if map_points < 3:
        raise ArgumentError(f"must be at least 3, got {map_points}", param="map_points")
    check_seed(seed)
    stages = probe_stages(run.model)
    wrapper = StageFeatures(run.model, stages).eval()
    key = {"model": f"probe-{run.config.model}", "run": str(run.path), "stages": stages}
    total = len(bundle.train) + len(bundle.val)
    offset = [0]

    def step(done: int, _n: int) -> None:
        if progress is not None:
            progress(offset[0] + done, total)

    parts = []
    for split in (bundle.train, bundle.val):
        parts.append(compute_embeddings(wrapper, split, mean=run.mean, std=run.std, cache_dir=cache_dir,
                                        key_parts=key, progress=step))
        offset[0] += len(split)
    train, val = parts
    from ..data.transforms import Normalize

    with torch.no_grad():
        one = Normalize(run.mean, run.std)(bundle.train.images[:1])
        dims = [int(t.shape[1]) for t in wrapper.pooled(one)]
    bounds = np.cumsum([0, *dims])
    xtr, xva = train.features.double().numpy(), val.features.double().numpy()
    ytr, yva = train.labels.numpy(), val.labels.numpy()
    last, labels = xva[:map_points, bounds[-2] : bounds[-1]], yva[:map_points]
    tsne_map = None
    # One BLAS/OpenMP thread: these problems are small, and on a busy CPU a thread pool per call
    # oversubscribes it (measured: 30 s instead of 0.7 s for one probe on a loaded 2-core machine).
    with threadpool_limits(1):
        accs = [_fit_probe(xtr[:, a:b], ytr, xva[:, a:b], yva, seed) for a, b in itertools.pairwise(bounds)]
        pca = PCA(n_components=2, random_state=seed).fit(last)
        if tsne:
            from sklearn.manifold import TSNE

            perplexity = float(min(30, max(2, (len(last) - 1) // 3)))
            tsne_map = TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity,
                            max_iter=500).fit_transform(last)
    counts = np.bincount(yva, minlength=len(run.classes))
    return ProbeResult(
        stages=stages, dims=dims, train_accuracy=[a[0] for a in accs], val_accuracy=[a[1] for a in accs],
        chance=float(counts.max() / max(1, counts.sum())), classes=list(run.classes), map_labels=labels,
        pca=pca.transform(last), pca_variance=float(pca.explained_variance_ratio_.sum()), tsne=tsne_map,
        cached=bool(train.cache_hit and val.cache_hit),
    )

