"""The model registry: ``register_model`` / ``create_model`` / ``list_models`` / ``model_info``.

Providers (modules that register models) are declared with :func:`register_provider` by the package
(``cnnlab/models/__init__.py``) and imported on first use, so that ``import cnnlab.models`` stays cheap;
the registry itself imports no provider. A provider may also claim a name prefix with
:func:`register_prefix` (``zoo_timm`` resolves ``"timm:<name>"`` against timm's own registry).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelArgumentError, ModelError, did_you_mean
from ._weights import PretrainedCfg

if TYPE_CHECKING:
    from .base import CNNLabModel

Builder = Callable[..., "CNNLabModel"]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: Registry name.
        builder: ``builder(*, num_classes, in_chans, pretrained) -> CNNLabModel``; ``pretrained`` is
            ``True``/``False`` here (local files are loaded by :func:`create_model`).
        family: "course", "torchvision", "timm" or "custom".
        input_size: Default (C, H, W) input, or (C, L) for a series model.
        num_classes: Default number of outputs.
        pretrained: Human-readable pretrained source ("" = none).
        offline: ``() -> bool``: are the pretrained weights available without the network?
        description: One line for ``cnnlab models``.
        weights_cfg: ``() -> PretrainedCfg``: the preprocessing of the architecture's released weights
            (what a pretrained or local weights file expects), or None for models without any.
        defaults: Recommended training options that differ from cnnlab's (``{"lr": 3e-4}``: Adam at
            1e-3 leaves ``cats_cnn`` at chance for epochs); ``fit`` applies them where the config
            leaves the option open (``TrainConfig.lr`` None: ``--lr`` not typed) and says so.
        sized_by_input: The network is built for the channels of the input it is given (a layer spec),
            so a caller that knows its input builds it with those channels instead of adapting a stem.
    """

    name: str
    builder: Builder
    family: str
    input_size: tuple[int, ...]
    num_classes: int
    pretrained: str = ""
    offline: Callable[[], bool] | None = None
    description: str = ""
    weights_cfg: Callable[[], PretrainedCfg] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    sized_by_input: bool = False


_REGISTRY: dict[str, ModelEntry] = {}
_PREFIXES: dict[str, Callable[[str], ModelEntry]] = {}
_PATTERNS: list[tuple[Callable[[str], bool], Callable[[str], ModelEntry]]] = []
_PROVIDERS: list[str] = []
_loaded: set[str] = set()


def register_provider(module: str) -> None:
    """Declare a module whose import registers models (imported on first use of the registry).

    Args:
        module: Absolute module name, e.g. ``"cnnlab.models.course"``.
    """
    if module not in _PROVIDERS:
        _PROVIDERS.append(module)


def register_prefix(prefix: str, resolver: Callable[[str], ModelEntry]) -> None:
    """Resolve every name ``prefix + rest`` with ``resolver(rest)`` (e.g. ``"timm:"`` -> timm's registry).

    Raises:
        ModelError: ``prefix`` is already claimed.
    """
    if prefix in _PREFIXES:
        raise ModelError(f"model name prefix {prefix!r} is already registered")
    _PREFIXES[prefix] = resolver


def register_pattern(match: Callable[[str], bool], resolver: Callable[[str], ModelEntry]) -> None:
    """Resolve every name for which ``match(name)`` holds with ``resolver(name)`` (e.g. a layer spec string).

    Args:
        match: Does a name belong to this source? Asked after the registered names and prefixes.
        resolver: The entry of such a name (it may raise a one-line error naming what is wrong in it).
    """
    _PATTERNS.append((match, resolver))


def register_model(
    name: str,
    *,
    family: str = "custom",
    input_size: tuple[int, ...] = (3, 224, 224),
    num_classes: int = 1000,
    pretrained: str = "",
    offline: Callable[[], bool] | None = None,
    description: str = "",
    weights_cfg: Callable[[], PretrainedCfg] | None = None,
    defaults: dict[str, Any] | None = None,
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
        input_size: Default (C, H, W), or (C, L) for a series model.
        num_classes: Default number of outputs.
        pretrained: Pretrained source description ("" = none).
        offline: Callable telling whether the pretrained weights are available offline.
        description: One-line description.
        weights_cfg: The preprocessing of the architecture's released weights (see :class:`ModelEntry`).
        defaults: Recommended training options (see :class:`ModelEntry`), e.g. ``{"lr": 3e-4}``.

    Returns:
        The decorator (it returns the builder unchanged).

    Raises:
        ModelError: ``name`` is already registered or starts with a registered prefix (``timm:``).
    """

    def deco(fn: Builder) -> Builder:
        if name in _REGISTRY:
            raise ModelError(f"model {name!r} is already registered; pick another name")
        taken = next((p for p in _PREFIXES if name.startswith(p)), None)
        if taken is not None:
            raise ModelError(f"model {name!r}: the {taken!r} prefix is reserved for its provider's models")
        _REGISTRY[name] = ModelEntry(
            name,
            fn,
            family,
            tuple(int(v) for v in input_size),
            num_classes,  # type: ignore[arg-type]
            pretrained,
            offline,
            description or (fn.__doc__ or "").strip().split("\n")[0],
            weights_cfg,
            dict(defaults or {}),
        )
        return fn

    return deco


def _ensure_builtin() -> None:
    for mod in _PROVIDERS:
        if mod not in _loaded:
            _loaded.add(mod)
            importlib.import_module(mod)


def _prefix_hint() -> str:
    return " or ".join(f"{p}<name>" for p in _PREFIXES)


def list_models() -> list[str]:
    """Registered model names (prefixed names such as ``timm:<name>`` work too but are not listed).

    Returns:
        Names in registration order.
    """
    _ensure_builtin()
    return list(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name`` (a prefixed name such as ``timm:<name>`` gets a dynamic entry).

    Raises:
        ModelArgumentError: Unknown name; the message lists the closest registered names.
    """
    _ensure_builtin()
    for prefix, resolve in _PREFIXES.items():
        if name.startswith(prefix):
            return resolve(name[len(prefix) :])
    if name not in _REGISTRY:
        for match, resolve_pattern in _PATTERNS:
            if match(name):
                return resolve_pattern(name)
        hint = did_you_mean(name, _REGISTRY)
        also = f" (or use {_prefix_hint()})" if _PREFIXES else ""
        raise ModelArgumentError(f"unknown model {name!r}: {hint}see `cnnlab models` for the list{also}")
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
        name: A name from :func:`list_models`, or a prefixed name such as ``"timm:<name>"``.
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
            from .surgery import adapt_model

            adapt_model(model, **kwargs)
        return model
    if pretrained and not entry.pretrained:
        raise ModelError(
            f"model {name!r} has no pretrained weights; train it, or pass a local file with `weights` FILE"
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
