"""The training configuration: every option of ``cnnlab train`` in one dataclass.

``config.yaml`` in a run folder is :meth:`TrainConfig.to_yaml`; :meth:`TrainConfig.from_yaml` reads it
back, so a run folder holds everything needed to reproduce the run.
"""

from __future__ import annotations

import dataclasses
import math
import types
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from ..errors import ArgumentError, CnnlabError, did_you_mean
from ..models.surgery import HeadKind
from ..values import MAX_SIZE, SEED_MAX


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
    """Transfer-learning modes ``--transfer`` accepts (see :mod:`cnnlab.transfer.policy`)."""

    SCRATCH = "scratch"
    FEATURES = "features"
    PARTIAL = "partial"
    FULL = "full"


class Logger(StrEnum):
    """Where ``--logger`` sends the scalars besides ``metrics.csv`` (see :mod:`cnnlab.train.tracking`)."""

    CSV = "csv"
    TENSORBOARD = "tensorboard"


class Strategy(StrEnum):
    """Lightning strategies ``--strategy`` accepts."""

    AUTO = "auto"
    DDP = "ddp"


class Accelerator(StrEnum):
    """Lightning accelerators ``--accelerator`` accepts (``gpu`` is CUDA or Apple's MPS)."""

    AUTO = "auto"
    CPU = "cpu"
    GPU = "gpu"
    CUDA = "cuda"
    MPS = "mps"


_ENUMS: dict[str, type[StrEnum]] = {
    "optimizer": Optimizer,
    "schedule": Schedule,
    "transfer": Transfer,
    "head": HeadKind,
    "strategy": Strategy,
    "accelerator": Accelerator,
    "logger": Logger,
}

#: The learning rate of a run whose model recommends none (``TrainConfig.lr`` None).
DEFAULT_LR = 1e-3
#: The largest learning rate: far above any useful one, below those whose Adam step overflows float32.
MAX_LR = 1000.0
#: Epochs, batch size and learning-rate schedule of a run that names none of them, on images.
IMAGE_DEFAULTS: dict[str, Any] = {"epochs": 10, "batch_size": 64, "schedule": "none"}
#: The same on series data (``ucr:``/``series:``): the archive's training sets hold tens to hundreds of
#: series, so an epoch is a few steps. Wang et al. (2017) train 1,500-2,000 epochs at batch 16 with the rate
#: halved on plateaus; a cosine decay over 150 epochs at batch 16 settles where they do on GunPoint and
#: ItalyPowerDemand in minutes (BENCHMARKS.md, series), and its last epoch needs no checkpoint choice.
SERIES_DEFAULTS: dict[str, Any] = {"epochs": 150, "batch_size": 16, "schedule": "cosine"}


def data_defaults(data: str) -> dict[str, Any]:
    """``epochs``, ``batch_size`` and ``schedule`` of a run on ``data`` that leaves them open.

    Returns:
        :data:`SERIES_DEFAULTS` for series data (``ucr:NAME``, ``series:FILE``), else :data:`IMAGE_DEFAULTS`.
    """
    from ..data.series import is_series_spec

    return dict(SERIES_DEFAULTS if is_series_spec(data) else IMAGE_DEFAULTS)


def default_model(data: str, img_size: int | None = None) -> str:
    """The model a run gets when none is named (:func:`cnnlab.train.defaults.default_choice`'s model).

    A folder or CSV of photos gets the pretrained ``efficientnet_lite0`` (trained with ``transfer``
    features); ``sample``, ``mnist``, ``fashion-mnist`` and folders of small grayscale images the course
    CNN (``mnist_cnn`` at 28 px, ``mnist_cnn_gap`` at any other size).

    Args:
        data: The data SPEC.
        img_size: The run's ``img_size`` (None keeps the data's own).

    Returns:
        A registry name.
    """
    from .defaults import default_choice

    return default_choice(data, img_size).model


def parse_lr(text: str | None) -> tuple[float | None, bool]:
    """``--lr`` as typed: a number, or ``find`` (the learning-rate finder chooses it).

    Returns:
        ``(lr, lr_find)``: the number and False, or None and True for ``find`` (None, False when not given).

    Raises:
        ArgumentError: Text that is neither a number nor ``find`` (naming ``lr``).
    """
    if text is None:
        return None, False
    if text.strip().lower() == "find":
        return None, True
    try:
        return float(text), False
    except ValueError:
        raise ArgumentError(f"{text!r}: give a number such as 3e-4, or find (the learning-rate finder "
                            "chooses it)", param="lr") from None


def _accepts(hint: Any, value: Any) -> bool:
    """Does ``value`` (as YAML reads it) fit the type ``hint`` of a :class:`TrainConfig` field?"""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_accepts(arg, value) for arg in get_args(hint))
    if origin is tuple:
        return isinstance(value, (list, tuple)) and all(_accepts(get_args(hint)[0], v) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str or (isinstance(hint, type) and issubclass(hint, StrEnum)):
        return isinstance(value, str)
    return True


def _refuse_unknown(values: dict[str, Any], source: str) -> None:
    unknown = sorted(set(values) - {f.name for f in fields(TrainConfig)})
    if unknown:
        names = ", ".join(unknown)
        raise ArgumentError(f"{source}: unknown option(s) {names}; remove them from config.yaml")


def _type_text(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_text(a) for a in get_args(hint))
    if get_origin(hint) is tuple:
        return "a list of strings"
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return "one of " + ", ".join(e.value for e in hint)
    return getattr(hint, "__name__", str(hint))


@dataclass
class TrainConfig:
    """Everything one training run needs (the options of ``cnnlab train``).

    Attributes:
        data: Data SPEC: ``sample``, ``mnist``, ``fashion-mnist``, a folder or a CSV.
        model: Model name from the registry (``cnnlab models``); ``None`` picks one that fits the data
            (:func:`cnnlab.train.defaults.default_choice`: ``mnist_cnn`` for the 28x28 datasets and small
            grayscale images; ``fcn1d`` for series; for photos the pretrained ``efficientnet_lite0`` with
            ``transfer`` features, which sets ``pretrained`` and, left at scratch, ``transfer``).
        out: Run folder; ``None`` means ``runs/<model>-<data name>``.
        epochs: Number of epochs (total, including ``fine_tune_epochs``); None (the default) is filled in
            on creation by :func:`data_defaults` (10; 150 on series data).
        batch_size: Images per optimisation step (per device); None: 64, or 16 on series data.
        lr: Learning rate (of the head when transferring); ``None`` means the model's recommended rate
            (``ModelEntry.defaults``, e.g. 3e-4 for ``cats_cnn``), else 1e-3; ``fit`` fills it in.
        lr_find: Choose ``lr`` with Lightning's learning-rate finder (``lr_find.png``); ``fit`` then records
            the suggestion as ``lr`` (a config with both set was found: it reruns without the finder).
            ``lr="find"`` (the text ``cnnlab train --lr`` takes) sets it.
        weight_decay: Weight decay (decoupled for adamw, L2 otherwise).
        optimizer: ``adam``, ``adamw`` or ``sgd`` (momentum 0.9).
        schedule: ``none``, ``onecycle`` (max lr = ``lr``) or ``cosine`` (to zero over ``epochs``); None:
            ``none``, or ``cosine`` on series data.
        augment: Augmentation preset (``cnnlab.data.transforms.AUGMENT_PRESETS``).
        img_size: Resize images to this square size; ``None`` keeps the data's or the weights' size.
        val_split: Fraction held out for validation when the data has no ``val`` split.
        seed: Seed for weights, shuffling, augmentation and dropout (0 to 2**32 - 1).
        deterministic: Use deterministic algorithms (identical ``metrics.csv`` for the same seed).
        devices: Devices per node (an int, or ``"auto"``).
        num_nodes: Number of machines.
        strategy: ``auto`` or ``ddp``.
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``, ``cuda``, ``mps``).
        resume: Continue from ``<out>/checkpoints/last.ckpt``.
        overwrite: Replace the run that ``out`` holds (finished or not): without it (or ``resume``) a folder
            holding a run is refused, never written over (:func:`cnnlab.runfolder.folder.check_new_run`).
        data_dir: Folder holding the IDX files of ``mnist``/``fashion-mnist``.
        limit: Use only the first (stratified) ``limit`` images of each split (quick runs, tests).
        workers: DataLoader worker processes.
        pretrained: Start from pretrained weights (the model's default source).
        weights: A local weights file (``.pth``/``.safetensors``) to start from; implies ``pretrained``.
        transfer: ``scratch``, ``features``, ``partial`` or ``full``; ``features`` and ``partial`` freeze
            the backbone, so ``fit`` refuses them without ``pretrained`` or ``weights`` (a frozen random
            backbone learns nothing).
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
        logger: ``csv`` (``metrics.csv`` only) or ``tensorboard`` (also TensorBoard event files in
            ``<out>/tensorboard``: scalars, every group's learning rate, hyper-parameters, figures).
    """

    data: str = "sample"
    model: str | None = None
    out: str | None = None
    epochs: int = None  # type: ignore[assignment]  # None: filled in by __post_init__ (data_defaults)
    batch_size: int = None  # type: ignore[assignment]  # likewise
    lr: float | None = None
    lr_find: bool = False
    weight_decay: float = 0.0
    optimizer: Optimizer = Optimizer.ADAM
    schedule: Schedule = None  # type: ignore[assignment]  # likewise
    augment: str = "none"
    img_size: int | None = None
    val_split: float = 0.2
    seed: int = 0
    deterministic: bool = True
    devices: int | str = 1
    num_nodes: int = 1
    strategy: Strategy = Strategy.AUTO
    accelerator: Accelerator = Accelerator.AUTO
    resume: bool = False
    overwrite: bool = False
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
    logger: Logger = Logger.CSV

    def __post_init__(self) -> None:
        defaults = data_defaults(self.data)
        for name in ("epochs", "batch_size", "schedule"):  # open options: the data's defaults
            if getattr(self, name) is None:
                setattr(self, name, defaults[name])
        if isinstance(self.lr, str):  # as typed: a number, or `find`
            self.lr, found = parse_lr(self.lr)
            self.lr_find = self.lr_find or found
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
        if self.model is None:  # the default for this data (cnnlab.train.defaults), recorded as chosen
            from .defaults import default_choice

            choice = default_choice(self.data, self.img_size)
            self.model = choice.model
            if self.img_size is None:  # 0 stays, to be refused below
                self.img_size = choice.img_size
            if choice.pretrained and self.weights is None:
                self.pretrained = True
                if self.transfer is Transfer.SCRATCH:  # the default mode: the choice's
                    self.transfer = Transfer(choice.transfer)
        checks = [
            ("epochs", self.epochs >= 1, "must be at least 1"),
            ("batch_size", self.batch_size >= 1, "must be at least 1"),
            ("lr", self.lr is None or (math.isfinite(self.lr) and 0 < self.lr <= MAX_LR),
             f"must be a positive number up to {MAX_LR:g}"),
            ("weight_decay", math.isfinite(self.weight_decay) and self.weight_decay >= 0,
             "must be a number >= 0"),
            ("seed", 0 <= self.seed <= SEED_MAX, f"must be between 0 and {SEED_MAX}"),
            ("val_split", 0.0 <= self.val_split < 1.0, "must be in [0, 1)"),
            ("num_nodes", self.num_nodes >= 1, "must be at least 1"),
            ("limit", self.limit is None or self.limit >= 1, "must be at least 1"),
            ("img_size", self.img_size is None or self.img_size >= 8, "must be at least 8 pixels"),
            ("workers", self.workers >= 0, "must be >= 0"),
            ("backbone_lr_mult", math.isfinite(self.backbone_lr_mult) and self.backbone_lr_mult >= 0,
             "must be a number >= 0"),
            ("unfreeze", self.unfreeze >= 1, "must be at least 1"),
            (
                "fine_tune_epochs",
                0 <= self.fine_tune_epochs < self.epochs or self.fine_tune_epochs == 0,
                "must be smaller than `epochs`",
            ),
        ]
        for param, ok, message in checks:
            if not ok:
                raise ArgumentError(message, param=param)
        for f in fields(self):  # 10**30 epochs or images per batch: refused here, never passed to PyTorch
            value = getattr(self, f.name)
            whole = isinstance(value, int) and not isinstance(value, bool)
            if whole and value > MAX_SIZE and f.name != "seed":
                raise ArgumentError(f"{value}: must be at most {MAX_SIZE:,}", param=f.name)
        if isinstance(self.devices, str) and self.devices != "auto":
            try:
                self.devices = int(self.devices)
            except ValueError:
                raise ArgumentError(f"{self.devices!r}: give a number or 'auto'", param="devices") from None
        if isinstance(self.devices, int) and self.devices < 1:
            raise ArgumentError(f"{self.devices}: give at least 1 (or 'auto')", param="devices")
        if self.weights is not None:
            self.pretrained = True
        if self.resume and self.overwrite:
            raise ArgumentError("continues the run in `out`, `overwrite` replaces it: give one of them",
                                param="resume")

    @property
    def run_dir(self) -> Path:
        """The run folder (``out``, or ``runs/<model>-<data name>``)."""
        if self.out is not None:
            return Path(self.out)
        data_name = Path(self.data).name or "data"
        if len(self.model_name.split()) > 1:  # a layer spec string: a short stable name instead of the text
            import hashlib

            name = "spec-" + hashlib.sha1(self.model_name.encode()).hexdigest()[:8]
        else:
            name = self.model_name.replace(":", "-")
        return Path("runs") / f"{name}-{data_name}"

    @property
    def model_name(self) -> str:
        """``model`` (always set once the config exists: :func:`default_model` fills it in)."""
        return str(self.model)

    @property
    def learning_rate(self) -> float:
        """``lr``, or :data:`DEFAULT_LR` while it is open (``fit`` fills in the model's recommendation)."""
        return self.lr if self.lr is not None else DEFAULT_LR

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
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Build a config from :meth:`to_dict` output.

        Args:
            values: Option names to values (plain types, as YAML reads them).
            source: What to name in messages (the file the values come from).

        Raises:
            ArgumentError: An unknown option, or a value of the wrong type (naming the key).
        """
        _refuse_unknown(values, source)
        hints = get_type_hints(cls)
        for key, value in values.items():
            if not _accepts(hints[key], value):
                raise ArgumentError(
                    f"{source}: key {key!r} must be {_type_text(hints[key])}, not {value!r}; fix the file "
                    "or train the run again"
                )
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
        fix = "fix the file or train the run again"
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise CnnlabError(f"{path}: cannot read the run config ({exc}); is this a run folder?") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            what = getattr(exc, "problem", None) or type(exc).__name__
            raise CnnlabError(f"{path}: cannot read the run config (YAML: {what}{where}); {fix}") from None
        if not isinstance(values, dict):
            raise CnnlabError(f"{path}: not a cnnlab config (expected a mapping of options); {fix}")
        _refuse_unknown(values, str(path))
        missing = [k for k in ("data", "model") if k not in values]
        if missing:
            raise CnnlabError(f"{path}: key {missing[0]!r} is missing; {fix}")
        try:
            return cls.from_dict(values, source=str(path))
        except ArgumentError as exc:
            if exc.param is None:
                raise
            raise CnnlabError(f"{path}: key {exc.param!r} {exc.message.strip()}; {fix}") from None

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)
