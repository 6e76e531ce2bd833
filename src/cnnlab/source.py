"""Where a model comes from: one resolver for every command that takes a model.

:func:`resolve_model` turns what a user names into a :class:`ModelSource`: the network (eval mode), its
class names, how to feed it (a :class:`~cnnlab.data.transforms.Preprocess`: the run's own decoding and
normalisation, or the pretrained weights' eval transform) and whether its weights were learned. It
accepts a run folder, a registry name (``cnnlab models``, ``timm:<name>``), a layer spec string
(``"conv:32:3 relu maxpool:2"``) or a weights file (``.safetensors``/``.pth``; cnnlab's own
``model.safetensors`` records its architecture, other files need the model's name beside them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelArgumentError, ModelError
from .models.spec import is_spec

if TYPE_CHECKING:
    from torch import nn

    from .data.transforms import Preprocess
    from .runfolder.folder import LoadedRun

__all__ = ["RANDOM_WEIGHTS", "ModelSource", "is_spec", "require_images", "resolve_model",
           "resolve_run_or_model"]

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")

#: What figures and messages made with a random initialisation say (``ModelSource.weights == "random"``).
RANDOM_WEIGHTS = "random weights"


@dataclass
class ModelSource:
    """A model and how to feed it.

    Attributes:
        model: The network, in eval mode.
        classes: Class names in output order (a one-logit model has two: below and above 0.5).
        preprocess: Image files -> the model's input (and the uint8 images to draw).
        label: How to name the source to the user (the run folder, the model name, the file).
        learned: False when the weights are a random initialisation (nothing learned to explain).
        num_classes: Outputs of the model (1 for a one-logit binary model).
        run: The run folder read back, when the source is one.
        notices: One-line notices for the user (e.g. weights not available offline).
        weights: Where the weights come from: ``"trained"`` (a run folder, or cnnlab's own exported
            ``model.safetensors``), ``"pretrained"`` (released or other local weights) or ``"random"``
            (an initialisation: every figure and ``--json`` made with it says so). Default: from
            ``learned``.
    """

    model: nn.Module
    classes: list[str]
    preprocess: Preprocess
    label: str
    learned: bool
    num_classes: int
    run: LoadedRun | None = None
    notices: list[str] = field(default_factory=list)
    weights: str = ""

    def __post_init__(self) -> None:
        if not self.weights:
            self.weights = "trained" if self.learned else "random"
        self.learned = self.weights != "random"

    @property
    def random_note(self) -> str:
        """``" (random weights)"`` for a random initialisation, else ``""``: for titles and messages."""
        return f" ({RANDOM_WEIGHTS})" if self.weights == "random" else ""

    @property
    def remarks(self) -> list[str]:
        """What a user is told before the model's output: its notices, and a warning for random weights."""
        lines = [f"note: {n}" for n in self.notices]
        if self.weights == "random":
            lines.append(f"warning: {self.label} has random weights: nothing it shows was learned; give a "
                         "run folder, or a model with pretrained weights (`cnnlab models`, column "
                         "Pretrained)")
        return lines

    @property
    def binary(self) -> bool:
        """True for a one-logit model (sigmoid > 0.5 means ``classes[1]``)."""
        return self.num_classes == 1

    @property
    def image_size(self) -> tuple[int, ...]:
        """(C, H, W) the model takes; (C, L) for a series model."""
        return self.preprocess.image_size


def require_images(image_size: tuple[int, ...], label: str, command: str) -> None:
    """Refuse a series model (``image_size`` (C, L)) for a command that works on images only.

    Raises:
        ModelError: naming the model, the command and the commands that take series.
    """
    if len(image_size) == 2:
        raise ModelError(f"{label} is a 1-D convnet for series; cnnlab {command} works on image models (on "
                         "series: summary, evaluate, predict, explain and report)")


def resolve_model(
    source: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | None = None,
    pretrained: bool | None = None,
    num_classes: int | None = None,
    input_size: tuple[int, ...] | None = None,
) -> ModelSource:
    """The model behind a run folder, a registry name, a spec string or a weights file.

    Args:
        source: A run folder, a name from ``cnnlab models`` (or ``timm:<name>``), a layer spec string,
            or a weights file.
        weights: A local weights file for a registry model (the architecture is ``source``).
        pretrained: Registry models: True for the pretrained weights (downloaded if need be), False for
            a random initialisation, None (default) for the pretrained weights when they are available
            offline and a random initialisation with a notice otherwise.
        num_classes: Outputs of a registry or spec model (default: the model's own).
        input_size: (C, H, W) of a spec model, (C, L) of a 1-D one (default 3x224x224, or 1x128 for a
            1-D spec; C is its input channels).

    Returns:
        A :class:`ModelSource` (model in eval mode).

    Raises:
        CnnlabError: An unknown name, a folder that is not a run, weights that do not fit.
    """
    path = Path(source)
    if path.is_dir():
        return _from_run(path)
    text = str(source)
    if path.is_file() and path.suffix.lower() in WEIGHT_SUFFIXES:
        src = _from_registry(_architecture_of(path), weights=path, pretrained=None, num_classes=num_classes)
        src.weights = "trained"  # a cnnlab export (the file records its architecture): a trained run's
        return src
    looks_like_path = (os.sep in text or "/" in text) and ":" not in text.split("/", 1)[0]
    if not path.exists() and looks_like_path:
        raise ModelArgumentError(
            f"{text}: no such run folder or weights file; check the path, or give a model name "
            "(`cnnlab models`)"
        )
    return _from_registry(text, weights=weights, pretrained=pretrained, num_classes=num_classes,
                          input_size=input_size)


def resolve_run_or_model(run: str | os.PathLike[str] | None, model: str | None) -> ModelSource:
    """The model behind a run folder or a model name: exactly one of them (``RUN`` or ``--model NAME``).

    Raises:
        CnnlabError: Both or neither given, or what :func:`resolve_model` refuses.
    """
    from .errors import CnnlabError

    if (run is None) == (model is None):
        raise CnnlabError("give a RUN folder or `model` NAME (not both)")
    return resolve_model(run if run is not None else str(model))


def _from_run(path: Path) -> ModelSource:
    if not (path / "config.yaml").is_file():
        raise ModelArgumentError(
            f"{path}: a folder but not a run folder (no config.yaml); give a model name or a run"
        )
    from .runfolder.folder import load_run

    run = load_run(path)
    classes = list(run.classes)
    return ModelSource(run.model, classes, run.preprocess, str(path), True, run.num_classes, run=run)


def _architecture_of(path: Path) -> str:
    """The registry name recorded in a cnnlab ``model.safetensors`` (other files do not say)."""
    name = None
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                name = (fh.metadata() or {}).get("model")
        except Exception:  # unreadable header: the weights loader names the damage below
            name = None
    if not name:
        raise ModelArgumentError(
            f"{path}: the file does not record its architecture (a cnnlab model.safetensors does); give the "
            "run folder it came from[, or the model's name with it (`model` NAME `weights` FILE)]"
        )
    return str(name)


def _classes(model: Any, n_out: int) -> list[str]:
    cfg = getattr(model, "pretrained_cfg", None)
    classes = list(cfg.class_names) if cfg is not None else []
    if not classes and n_out == 1000:
        from .models import imagenet_classes

        classes = list(imagenet_classes())
    return classes or [str(i) for i in range(max(n_out, 2))]  # one logit = binary: classes 0 and 1


def _outputs(model: Any) -> int:
    from .errors import ModelError
    from .models.surgery import classifier_layer

    try:
        return int(classifier_layer(model).out_features)
    except ModelError:  # a convolutional base: no classes
        return 0


def _from_registry(
    name: str, *, weights: str | os.PathLike[str] | None, pretrained: bool | None, num_classes: int | None,
    input_size: tuple[int, ...] | None = None,
) -> ModelSource:
    from .data.transforms import Preprocess
    from .models import create_model
    from .models._registry import get_entry

    entry = get_entry(name)
    if input_size is not None and len(input_size) != len(entry.input_size):  # CxL: series, CxHxW: images
        want = "CxL, e.g. 1x128 (a 1-D model)" if len(entry.input_size) == 2 else "CxHxW, e.g. 3x224x224"
        raise ModelArgumentError(f"{'x'.join(map(str, input_size))}: give it as {want}", param="input_size")
    notices: list[str] = []
    if weights is not None:
        source: bool | str = str(weights)
    elif pretrained is None:
        source = bool(entry.pretrained and entry.offline is not None and entry.offline())
        if entry.pretrained and not source:
            notices.append(f"the pretrained weights of {name} are not available offline; random init")
    else:
        source = pretrained
    sized = entry.sized_by_input and input_size is not None  # a layer spec takes the channels it is given
    model = create_model(name, pretrained=source, num_classes=num_classes,
                         in_chans=input_size[0] if sized and input_size else None).eval()
    cfg = getattr(model, "pretrained_cfg", None) if source else None
    if cfg is not None:
        preprocess = Preprocess.from_weights(cfg)
    else:
        size = input_size if sized and input_size else entry.input_size
        preprocess = Preprocess(size, (0.0,) * size[0], (1.0,) * size[0])
    n_out = _outputs(model)
    label = name if weights is None else f"{name} ({weights})"
    kind = "pretrained" if source else "random"
    return ModelSource(model, _classes(model, n_out), preprocess, label, bool(source), n_out, notices=notices,
                       weights=kind)

