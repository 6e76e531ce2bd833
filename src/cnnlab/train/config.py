"""The training configuration: every option of ``cnnlab train`` in one dataclass.

``config.yaml`` in a run folder is :meth:`TrainConfig.to_yaml`; :meth:`TrainConfig.from_yaml` reads it
back, so a run folder holds everything needed to reproduce the run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, CnnlabError, did_you_mean
from ..models.surgery import HeadKind


class Optimizer(StrEnum):
    """Optimizers ``--optimizer`` accepts."""

    ADAM = "adam"
    ADAMW = "adamw"
    SGD = "sgd"


class Schedule(StrEnum):
    """Learning-rate schedules ``--schedule`` accepts."""

    NONE = "none"
    ONECYCLE = "onecycle"
    COSINE = "cosine"


class Transfer(StrEnum):
    """Transfer-learning modes ``--transfer`` accepts (see :mod:`cnnlab.train.transfer`)."""

    SCRATCH = "scratch"
    FEATURES = "features"
    PARTIAL = "partial"
    FULL = "full"


class Strategy(StrEnum):
    """Lightning strategies ``--strategy`` accepts."""

    AUTO = "auto"
    DDP = "ddp"


_ENUMS: dict[str, type[StrEnum]] = {
    "optimizer": Optimizer,
    "schedule": Schedule,
    "transfer": Transfer,
    "head": HeadKind,
    "strategy": Strategy,
}


@dataclass
class TrainConfig:
    """Everything one training run needs (the options of ``cnnlab train``).

    Attributes:
        data: Data SPEC: ``sample``, ``mnist``, ``fashion-mnist``, a folder or a CSV.
        model: Model name from the registry (``cnnlab models``).
        out: Run folder; ``None`` means ``runs/<model>-<data name>``.
        epochs: Number of epochs (total, including ``fine_tune_epochs``).
        batch_size: Images per optimisation step (per device).
        lr: Learning rate (of the head when transferring).
        weight_decay: Weight decay (decoupled for adamw, L2 otherwise).
        optimizer: ``adam``, ``adamw`` or ``sgd`` (momentum 0.9).
        schedule: ``none``, ``onecycle`` (max lr = ``lr``) or ``cosine`` (to zero over ``epochs``).
        augment: Augmentation preset (``cnnlab.data.transforms.AUGMENT_PRESETS``).
        img_size: Resize images to this square size; ``None`` keeps the data's or the weights' size.
        val_split: Fraction held out for validation when the data has no ``val`` split.
        seed: Seed for weights, shuffling, augmentation and dropout.
        deterministic: Use deterministic algorithms (identical ``metrics.csv`` for the same seed).
        devices: Devices per node (an int, or ``"auto"``).
        num_nodes: Number of machines.
        strategy: ``auto`` or ``ddp``.
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``).
        resume: Continue from ``<out>/checkpoints/last.ckpt``.
        data_dir: Folder holding the IDX files of ``mnist``/``fashion-mnist``.
        limit: Use only the first (stratified) ``limit`` images of each split (quick runs, tests).
        workers: DataLoader worker processes.
        pretrained: Start from pretrained weights (the model's default source).
        weights: A local weights file (``.pth``/``.safetensors``) to start from; implies ``pretrained``.
        transfer: ``scratch``, ``features``, ``partial`` or ``full``.
        backbone_lr_mult: Backbone learning rate = ``lr * backbone_lr_mult`` (``full``/``partial``).
        unfreeze: Number of last backbone blocks trained in ``partial``.
        unfreeze_layers: Explicit block names to train in ``partial`` (overrides ``unfreeze``).
        train_bn: Let frozen batch-norm layers update their running statistics.
        head: Classifier head for ``features``: ``linear``, ``mlp`` or ``logreg``.
        fine_tune_epochs: In ``full``: train this many epochs with the backbone frozen first.
        cache_dir: Folder for the embedding cache of ``features`` (default ``<out>/../.cache``).
        channels_last: Run convolutions in channels-last (NHWC) memory format; ``None`` (the default)
            means on when training on the CPU, where oneDNN's NHWC kernels measured 1.2-1.9x faster
            for every cnnlab model (``benchmarks/train_throughput.py``), off on accelerators. The
            numbers differ from NCHW only by float rounding.
        progress: Show a rich progress bar.
    """

    data: str = "sample"
    model: str = "mnist_cnn"
    out: str | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: Optimizer = Optimizer.ADAM
    schedule: Schedule = Schedule.NONE
    augment: str = "none"
    img_size: int | None = None
    val_split: float = 0.2
    seed: int = 0
    deterministic: bool = True
    devices: int | str = 1
    num_nodes: int = 1
    strategy: Strategy = Strategy.AUTO
    accelerator: str = "auto"
    resume: bool = False
    data_dir: str | None = None
    limit: int | None = None
    workers: int = 0
    pretrained: bool = False
    weights: str | None = None
    transfer: Transfer = Transfer.SCRATCH
    backbone_lr_mult: float = 0.1
    unfreeze: int = 1
    unfreeze_layers: tuple[str, ...] = field(default=())
    train_bn: bool = False
    head: HeadKind = HeadKind.LINEAR
    fine_tune_epochs: int = 0
    cache_dir: str | None = None
    channels_last: bool | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        for name, enum in _ENUMS.items():
            value = getattr(self, name)
            try:
                setattr(self, name, enum(value))
            except ValueError:
                values = [e.value for e in enum]
                hint = did_you_mean(str(value), values)
                raise ArgumentError(
                    f"{value!r}: unknown; {hint}choose one of {', '.join(values)}", param=name
                ) from None
        self.unfreeze_layers = tuple(self.unfreeze_layers)
        checks = [
            ("epochs", self.epochs >= 1, "must be at least 1"),
            ("batch_size", self.batch_size >= 1, "must be at least 1"),
            ("lr", self.lr > 0, "must be positive"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("val_split", 0.0 <= self.val_split < 1.0, "must be in [0, 1)"),
            ("num_nodes", self.num_nodes >= 1, "must be at least 1"),
            ("limit", self.limit is None or self.limit >= 1, "must be at least 1"),
            ("img_size", self.img_size is None or self.img_size >= 8, "must be at least 8 pixels"),
            ("workers", self.workers >= 0, "must be >= 0"),
            ("backbone_lr_mult", self.backbone_lr_mult >= 0, "must be >= 0"),
            (
                "fine_tune_epochs",
                0 <= self.fine_tune_epochs < self.epochs or self.fine_tune_epochs == 0,
                "must be smaller than `epochs`",
            ),
        ]
        for param, ok, message in checks:
            if not ok:
                raise ArgumentError(message, param=param)
        if isinstance(self.devices, str) and self.devices != "auto":
            try:
                self.devices = int(self.devices)
            except ValueError:
                raise ArgumentError(f"{self.devices!r}: give a number or 'auto'", param="devices") from None
        if isinstance(self.devices, int) and self.devices < 1:
            raise ArgumentError(f"{self.devices}: give at least 1 (or 'auto')", param="devices")
        if self.weights is not None:
            self.pretrained = True

    @property
    def run_dir(self) -> Path:
        """The run folder (``out``, or ``runs/<model>-<data name>``)."""
        if self.out is not None:
            return Path(self.out)
        data_name = Path(self.data).name or "data"
        if len(self.model.split()) > 1:  # a layer spec string: a short stable name instead of the text
            import hashlib

            name = "spec-" + hashlib.sha1(self.model.encode()).hexdigest()[:8]
        else:
            name = self.model.replace(":", "-")
        return Path("runs") / f"{name}-{data_name}"

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (enums as strings, tuples as lists): safe for YAML/JSON."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build a config from :meth:`to_dict` output; unknown keys raise a :class:`CnnlabError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            names = ", ".join(unknown)
            raise ArgumentError(f"config: unknown option(s) {names}; remove them from config.yaml")
        return cls(**values)

    def to_yaml(self) -> str:
        """The config as YAML text (what ``config.yaml`` holds)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a ``config.yaml`` written by :meth:`to_yaml`."""
        import yaml

        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CnnlabError(f"{path}: cannot read the run config ({exc}); is this a run folder?") from None
        if not isinstance(values, dict):
            raise CnnlabError(f"{path}: not a cnnlab config (expected a mapping)")
        return cls.from_dict(values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)
