"""Training the head on cached embeddings (``--transfer features``; the cache is :mod:`.embeddings`).

:class:`EmbeddingHead` is what the Lightning module trains (the head after its pooling prefix, with
``model.head``'s own parameters), :func:`embedding_datamodule` feeds it ``(embedding, label)`` batches in
exactly the order training on images would, and ``--head logreg`` is fitted in closed form
(:func:`fit_logreg_head`, run by the :class:`LogRegHead` callback).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import TrainingError
from ..models.surgery import split_head
from .embeddings import Embeddings

__all__ = ["EmbeddingHead", "LogRegHead", "embedding_datamodule", "fit_logreg_head"]


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
        raise TrainingError("logreg needs a head with one linear layer; use linear or mlp", param="head")
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
            f"logreg: {coef.shape[0]} classes in the data, the head has {linear.out_features} outputs",
            param="head",
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
