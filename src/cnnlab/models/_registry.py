"""The model registry: ``register_model`` / ``create_model`` / ``list_models`` / ``model_info``.

Built-in models register when their module is imported; ``create_model`` imports them on first use so
that ``import cnnlab.models`` stays cheap (no torchvision/timm import until a model is built).
``"timm:<name>"`` is resolved dynamically against timm's own registry.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .base import CNNLabModel

#: Modules whose import registers the built-in models (imported lazily, in this order).
_BUILTIN_MODULES = ("cnnlab.models.lecture", "cnnlab.models.zoo_torchvision", "cnnlab.models.zoo_timm")

Builder = Callable[..., CNNLabModel]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: Registry name.
        builder: ``builder(*, num_classes, in_chans, pretrained) -> CNNLabModel``; ``pretrained`` is
            ``True``/``False`` here (local files are loaded by :func:`create_model`).
        family: "course", "torchvision", "timm" or "custom".
        input_size: Default (C, H, W) input.
        num_classes: Default number of outputs.
        pretrained: Human-readable pretrained source ("" = none).
        offline: ``() -> bool``: are the pretrained weights available without the network?
        description: One line for ``cnnlab models``.
    """

    name: str
    builder: Builder
    family: str
    input_size: tuple[int, int, int]
    num_classes: int
    pretrained: str = ""
    offline: Callable[[], bool] | None = None
    description: str = ""


_REGISTRY: dict[str, ModelEntry] = {}
_loaded = False


def register_model(
    name: str,
    *,
    family: str = "custom",
    input_size: tuple[int, int, int] = (3, 224, 224),
    num_classes: int = 1000,
    pretrained: str = "",
    offline: Callable[[], bool] | None = None,
    description: str = "",
) -> Callable[[Builder], Builder]:
    """Decorator registering a model builder under ``name``.

    Example:
        >>> @register_model("tiny_net", input_size=(1, 28, 28), num_classes=10)
        ... def tiny_net(*, num_classes=10, in_chans=1, pretrained=False):
        ...     return build_from_spec("conv:8:3 relu maxpool:2", head="gap", in_chans=in_chans,
        ...                            num_classes=num_classes)

    Args:
        name: Registry name; must be new (a duplicate raises).
        family: Family shown by ``cnnlab models``.
        input_size: Default (C, H, W).
        num_classes: Default number of outputs.
        pretrained: Pretrained source description ("" = none).
        offline: Callable telling whether the pretrained weights are available offline.
        description: One-line description.

    Returns:
        The decorator (it returns the builder unchanged).

    Raises:
        ModelError: ``name`` is already registered or starts with the reserved ``timm:`` prefix.
    """

    def deco(fn: Builder) -> Builder:
        if name in _REGISTRY:
            raise ModelError(f"model {name!r} is already registered; pick another name")
        if name.startswith("timm:"):
            raise ModelError(f"model {name!r}: the 'timm:' prefix is reserved for timm's own models")
        _REGISTRY[name] = ModelEntry(
            name,
            fn,
            family,
            (int(input_size[0]), int(input_size[1]), int(input_size[2])),
            num_classes,  # type: ignore[arg-type]
            pretrained,
            offline,
            description or (fn.__doc__ or "").strip().split("\n")[0],
        )
        return fn

    return deco


def _ensure_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)


def list_models() -> list[str]:
    """Registered model names (``timm:<name>`` works too but is not listed).

    Returns:
        Names in registration order.
    """
    _ensure_builtin()
    return list(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name`` (``timm:<name>`` gets a dynamic entry).

    Raises:
        ModelError: Unknown name; the message lists the closest registered names.
    """
    _ensure_builtin()
    if name.startswith("timm:"):
        from .zoo_timm import timm_entry

        return timm_entry(name[len("timm:") :])
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelError(
            f"unknown model {name!r}: {hint}see `cnnlab models` for the list (or use timm:<name>)"
        )
    return _REGISTRY[name]


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    pretrained: bool | str = False,
) -> CNNLabModel:
    """Build a registered model by name.

    Args:
        name: A name from :func:`list_models`, or ``"timm:<name>"``.
        num_classes: Outputs of the classifier; ``None`` = the model's default (10 for the mnist nets,
            1 for the cats nets, 1000 for the zoo).
        in_chans: Input channels; ``None`` = the model's default.
        pretrained: ``False``; ``True`` for the model's pretrained source (offline package or the
            library's own download); or a path to a ``.pth``/``.safetensors`` state dict.

    Returns:
        The model (train mode, as ``nn.Module`` s are built).

    Raises:
        ModelError: Unknown name, missing/mismatched weights, or no network for a download.
    """
    entry = get_entry(name)
    kwargs: dict[str, Any] = {
        "num_classes": entry.num_classes if num_classes is None else int(num_classes),
        "in_chans": entry.input_size[0] if in_chans is None else int(in_chans),
    }
    if isinstance(pretrained, (str, Path)) and not isinstance(pretrained, bool):
        from ._weights import load_weights_file

        model = entry.builder(pretrained=False, **kwargs)
        try:
            load_weights_file(model, Path(pretrained), model_name=name)
        except ModelError as first_error:
            defaults = {"num_classes": entry.num_classes, "in_chans": entry.input_size[0]}
            if kwargs == defaults:
                raise
            # e.g. ImageNet weights for a 5-class grey model: load at the defaults, then adapt
            model = entry.builder(pretrained=False, **defaults)
            try:
                load_weights_file(model, Path(pretrained), model_name=name)
            except ModelError:
                raise first_error from None
            from ._adapt import adapt_model

            adapt_model(model, **kwargs)
        return model
    if pretrained and not entry.pretrained:
        raise ModelError(
            f"model {name!r} has no pretrained weights; train it, or pass a local file with --weights FILE"
        )
    return entry.builder(pretrained=bool(pretrained), **kwargs)


def model_info(name: str) -> dict[str, Any]:
    """What ``cnnlab models`` shows for one model.

    Returns:
        ``{"name", "family", "input_size": [C, H, W], "num_classes", "pretrained": source or None,
        "pretrained_offline": bool, "description"}``.
    """
    entry = get_entry(name)
    offline = bool(entry.offline()) if (entry.pretrained and entry.offline is not None) else False
    return {
        "name": entry.name,
        "family": entry.family,
        "input_size": list(entry.input_size),
        "num_classes": entry.num_classes,
        "pretrained": entry.pretrained or None,
        "pretrained_offline": offline,
        "description": entry.description,
    }
