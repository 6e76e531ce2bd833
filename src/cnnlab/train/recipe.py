"""One recipe for a run's model: :func:`build_model`, used by ``fit`` AND by ``load_run``.

A run's network is the registry's model (pretrained when the config says so), its head configured for
the data (:func:`~cnnlab.models.surgery.configure_head`), its stem adapted to the data's channels
(:func:`~cnnlab.models.surgery.adapt_in_chans`) and its parameters frozen as the transfer mode leaves
them at the end of training (:mod:`cnnlab.transfer.freezing`: loading a run needs no Lightning). Training
builds it with the weights; ``load_run`` builds the same architecture without them and loads
``model.safetensors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import TrainConfig

if TYPE_CHECKING:
    from torch import nn

    from ..models import PretrainedCfg

__all__ = ["build_model", "normalization", "output_count", "weights_preprocessing"]


def weights_preprocessing(cfg: TrainConfig) -> PretrainedCfg | None:
    """The preprocessing the run's starting weights expect (None when training from scratch).

    Read from the registry without building the model, so the data can be sized before the model is
    built: a pretrained source or a local weights file of a zoo architecture records its input size.
    """
    if not cfg.pretrained:
        return None
    from ..models._registry import get_entry

    entry = get_entry(cfg.model_name)
    return entry.weights_cfg() if entry.weights_cfg is not None else None


def output_count(cfg: TrainConfig, n_classes: int) -> int:
    """Outputs of the run's classifier for ``n_classes`` classes in the data.

    A model whose default head has one output (the course's cats network) stays binary on a two-class
    dataset; otherwise the head gets ``n_classes`` outputs.
    """
    from ..models._registry import get_entry

    return 1 if (get_entry(cfg.model_name).num_classes == 1 and n_classes == 2) else n_classes


def build_model(
    cfg: TrainConfig, *, in_chans: int, num_classes: int, notices: list[str] | None = None
) -> nn.Module:
    """The run's network: the registry's model, its head sized, its stem adapted, its parameters frozen.

    Args:
        cfg: The run's config (``model``: a registry name or a layer spec string; ``pretrained``/``weights``,
            ``head``, the transfer options).
            Use ``cfg.replace(pretrained=False, weights=None)`` for the architecture alone.
        in_chans: Channels of the data.
        num_classes: Outputs of the classifier (:func:`output_count`).
        notices: If given, one-line notices for the user are appended (e.g. an adapted stem).

    Returns:
        The model in train mode, ``requires_grad`` set by the transfer mode of the last epoch.

    Raises:
        ModelError: An unknown model, weights that do not fit, a model without a classifier.
    """
    from ..models import create_model
    from ..models._registry import get_entry
    from ..models.surgery import adapt_in_chans, classifier_layer, configure_head
    from ..transfer.freezing import apply_transfer, mode_at

    pretrained: bool | str = cfg.weights or cfg.pretrained
    if get_entry(cfg.model_name).sized_by_input:  # a layer spec: built for the data, weights or not
        model: nn.Module = create_model(cfg.model_name, pretrained=cfg.weights or False, in_chans=in_chans,
                                        num_classes=num_classes)
    else:
        model = create_model(cfg.model, pretrained=pretrained, in_chans=None if pretrained else in_chans)
    default = classifier_layer(model).out_features  # a base without classifier cannot be trained: says so
    if num_classes != default or cfg.head != "linear":
        configure_head(model, kind=cfg.head, num_classes=num_classes)
    notice = adapt_in_chans(model, in_chans)
    if notice and notices is not None:
        notices.append(notice)
    last = mode_at(cfg.transfer, cfg.epochs - 1, cfg.fine_tune_epochs)  # the freezing training ends with
    apply_transfer(model, mode=last, unfreeze=cfg.unfreeze, unfreeze_layers=cfg.unfreeze_layers,
                   train_bn=cfg.train_bn)
    return model


def normalization(
    cfg: TrainConfig, model: nn.Module, in_chans: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The run's input normalisation: the weights' mean/std when pretrained, else pixels in [0, 1].

    From scratch, pixels are scaled to [0, 1] as in the course notebooks.
    """
    pcfg = getattr(model, "pretrained_cfg", None)
    if cfg.pretrained and pcfg is not None:
        return pcfg.mean_std(in_chans)
    return (0.0,) * in_chans, (1.0,) * in_chans
