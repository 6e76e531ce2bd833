"""What :func:`~cnnlab.train.run.fit` settles and checks before any slow work.

* :func:`apply_model_defaults`: options the config leaves open (``lr`` None) get the model's recommended
  value (``ModelEntry.defaults``) or cnnlab's, with a notice saying so.
* :func:`check_transfer`: ``features``/``partial`` without pretrained weights would freeze a random
  backbone: refused.
* :func:`check_devices`: an accelerator that is not there, more CPU processes than cores, several
  nodes without a cluster: one line each, before Lightning starts processes that would hang or crash.
* :func:`check_model_fits`: a dry forward pass (:func:`cnnlab.memory.dry_forward`, shapes only) of the
  run's architecture on the data's image size and the training step's memory estimate against the
  budget. It runs before the data is decoded (on the size the data will have) and again on the built
  model, so that ``--model mnist_cnn`` on 150 px photos or ``--img-size 4000`` end in one line instead
  of a shape error in the first step or the kernel's out-of-memory killer.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import ArgumentError, ModelError
from .config import DEFAULT_LR, TrainConfig, Transfer

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "apply_model_defaults",
    "check_devices",
    "check_model_fits",
    "check_names",
    "check_transfer",
    "expected_image_shape",
]

#: Options a model may recommend (the ``TrainConfig`` fields whose default is "open", None).
OPEN_OPTIONS = ("lr",)


def apply_model_defaults(cfg: TrainConfig) -> tuple[TrainConfig, list[str]]:
    """Fill in the options ``cfg`` leaves open with the model's recommendations, else cnnlab's defaults.

    Returns:
        The completed config and one notice per recommendation applied.

    Raises:
        ModelError: The registry entry recommends an option cnnlab does not know.
    """
    from ..models._registry import get_entry

    entry = get_entry(cfg.model_name)
    unknown = sorted(set(entry.defaults) - set(OPEN_OPTIONS))
    if unknown:
        raise ModelError(f"model {cfg.model_name!r} recommends unknown option(s) {', '.join(unknown)} "
                         f"(known: {', '.join(OPEN_OPTIONS)}); fix its register_model(defaults=...)")
    notices: list[str] = []
    if cfg.lr is not None:
        return cfg, notices
    recommended = entry.defaults.get("lr")
    if recommended is None:
        return cfg.replace(lr=DEFAULT_LR), notices
    notices.append(f"learning rate {float(recommended):g}, recommended for {cfg.model_name} "
                   "(give `lr` to choose another)")
    return cfg.replace(lr=float(recommended)), notices


def check_names(cfg: TrainConfig) -> None:
    """The model (a registry name or a layer spec, parsed now) and the augmentation preset exist.

    Cheap (no training imports): a command calls it before the slow work, naming the token at fault.

    Raises:
        ModelArgumentError: An unknown model or a malformed spec; DataArgumentError: an unknown preset.
    """
    from ..data.transforms import get_preset
    from ..models._registry import get_entry

    get_entry(cfg.model_name)
    get_preset(cfg.augment)


def check_transfer(cfg: TrainConfig) -> None:
    """Refuse to freeze a random backbone: ``features``/``partial`` need ``pretrained`` or ``weights``.

    Raises:
        ArgumentError: naming ``transfer`` and the fix.
    """
    if cfg.transfer in (Transfer.FEATURES, Transfer.PARTIAL) and not cfg.pretrained:
        raise ArgumentError(
            f"{cfg.transfer.value} freezes the backbone, and without `pretrained` or `weights` it would "
            "stay random (nothing to transfer); add `pretrained` (or `weights` FILE), or use `transfer` "
            "scratch",
            param="transfer",
        )


def _cluster_env() -> bool:
    names = ("MASTER_ADDR", "NODE_RANK", "WORLD_SIZE", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID")
    return any(name in os.environ for name in names)


def check_devices(cfg: TrainConfig) -> None:
    """Refuse accelerators, device counts and node counts this machine cannot give.

    Raises:
        ArgumentError: naming ``accelerator``, ``devices`` or ``num_nodes`` and the fix.
    """
    import torch

    accel = cfg.accelerator.value
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    missing = {"cuda": not cuda, "mps": not mps, "gpu": not (cuda or mps)}
    if missing.get(accel, False):
        raise ArgumentError(f"{accel}: no such device on this machine (PyTorch sees no GPU); use "
                            "`accelerator` cpu or auto", param="accelerator")
    on_cpu = accel == "cpu" or (accel == "auto" and not (cuda or mps))
    cores = os.cpu_count() or 1
    if on_cpu and isinstance(cfg.devices, int) and cfg.devices > cores:
        raise ArgumentError(f"{cfg.devices}: this machine has {cores} CPU core(s), one training process "
                            f"each at most; give 1..{cores}", param="devices")
    if cfg.num_nodes > 1 and not _cluster_env():
        raise ArgumentError(
            f"{cfg.num_nodes}: no cluster found (MASTER_ADDR, NODE_RANK and WORLD_SIZE are not set); start "
            "one process per machine with those set (or with torchrun or SLURM), or use `num_nodes` 1",
            param="num_nodes",
        )


def expected_image_shape(cfg: TrainConfig) -> tuple[int, ...]:
    """The (C, H, W) the run's data will have, known before decoding it; (C, L) for series data.

    The 28x28 datasets are 1-channel, photos RGB; the side is ``img_size``, else the starting weights'
    input size, else the data's own (28 for the datasets, ``DEFAULT_FOLDER_SIZE`` for photos), as
    :func:`cnnlab.data.load_data` sizes it. Series are small: their shape is read from the data.
    """
    from ..data import DEFAULT_FOLDER_SIZE, load_data
    from ..data.datasets import list_datasets
    from ..data.series import is_series_spec
    from .recipe import weights_preprocessing

    if is_series_spec(cfg.data):
        return load_data(cfg.data, val_split=cfg.val_split, seed=cfg.seed, limit=cfg.limit).image_shape

    idx = cfg.data in list_datasets()
    weights = weights_preprocessing(cfg)
    side = cfg.img_size or (weights.input_size[-1] if weights is not None else None)
    side = side or (28 if idx else DEFAULT_FOLDER_SIZE)
    return (1 if idx else 3), side, side


def _architecture(cfg: TrainConfig, in_chans: int) -> nn.Module:
    """The run's network built on the meta device: its shapes without its memory or its weights."""
    import torch

    from .recipe import build_model

    with torch.device("meta"):
        return build_model(cfg.replace(pretrained=False, weights=None), in_chans=in_chans, num_classes=2)


def check_model_fits(
    cfg: TrainConfig,
    shape: tuple[int, ...],
    *,
    model: nn.Module | None = None,
    images: int | None = None,
) -> None:
    """Refuse a model that cannot run on ``shape`` images, or a training step over the memory budget.

    Args:
        cfg: The run's config (``model``, ``batch_size``).
        shape: (C, H, W) of the data's images.
        model: The built model; None builds the architecture on the meta device (before the data exists).
        images: Training images (a batch holds at most this many), when known.

    Raises:
        ModelError: The images do not fit the model (naming the layer, both sizes and the fix).
        CnnlabError: The estimated memory of one training step is over the budget.
    """
    from ..memory import check_memory, dry_forward, fit_error
    from ..models._registry import get_entry
    from ..models.base import input_rank

    net = model if model is not None else _architecture(cfg, shape[0])
    size = "x".join(map(str, shape))
    rank = input_rank(net)
    if rank is not None and rank != len(shape):  # a 2-D model on series, or a 1-D one on images
        if rank == 3:
            raise ModelError(f"{cfg.model_name} is an image (2-D) model and the data are series ({size}): "
                             "use a 1-D convnet as `model` (fcn1d, resnet1d, or a conv1d spec)")
        raise ModelError(f"{cfg.model_name} is a 1-D convnet for series and the data are images ({size}): "
                         "use an image model as `model` (leave it out for the default)")
    probe = dry_forward(net, shape)
    if probe.failed is not None:
        if get_entry(cfg.model_name).sized_by_input:
            own = "use a larger `img_size` or fewer downsampling layers in the spec"
        else:
            own = f"use `img_size` {get_entry(cfg.model_name).input_size[-1]} ({cfg.model_name}'s size)"
        error = fit_error(
            probe, model_name=cfg.model_name, what=f"the data's {size} images",
            fix_small=f"{own}, or a model for small images (mnist_cnn_gap takes 28x28 and up)",
            fix_other=f"{own}, or a model whose global-pooling head takes any size (cats_cnn)",
        )
        raise error if error is not None else ModelError(f"{cfg.model_name} cannot run on {size} images")
    batch = min(cfg.batch_size, images) if images else cfg.batch_size
    frozen = cfg.transfer == Transfer.FEATURES  # the backbone only embeds, under no_grad
    check_memory(
        probe.training_bytes(batch, backward=not frozen),
        f"{'embedding with' if frozen else 'training'} {cfg.model_name} on {size} images, {batch} per batch,",
        "lower `img_size` or `batch_size`",
    )

