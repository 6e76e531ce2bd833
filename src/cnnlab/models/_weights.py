"""Pretrained weight sources and the preprocessing they carry."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PretrainedCfg:
    """The preprocessing a set of weights expects; the eval transform is derived from it.

    Attributes:
        source: Where the weights came from (package name, URL or local file).
        mean: Per-channel mean in [0, 1] units.
        std: Per-channel std in [0, 1] units.
        input_size: (C, H, W) the weights were trained at.
        interpolation: Resize interpolation ("bilinear" or "bicubic").
        crop_pct: Centre-crop fraction used at evaluation (resize to size / crop_pct, then crop).
        class_names: Names of the output classes (e.g. the 1,000 ImageNet classes).
    """

    source: str
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    input_size: tuple[int, int, int] = (3, 224, 224)
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    class_names: tuple[str, ...] = field(default=(), repr=False)

    def mean_std(self, in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Normalisation for data with ``in_chans`` channels (grey: the mean of the RGB values).

        Goes with :func:`cnnlab.models.surgery.adapt_in_chans`, which sums the RGB kernels for grey input.
        """
        mean, std = tuple(self.mean), tuple(self.std)
        if len(mean) == in_chans:
            return mean, std
        if in_chans == 1:
            return (sum(mean) / len(mean),), (sum(std) / len(std),)
        spread = range(in_chans)
        return tuple(mean[i % len(mean)] for i in spread), tuple(std[i % len(std)] for i in spread)


# --------------------------------------------------------------------------------------------------
# Added by the models area: class names and loading weights from local files (additive).

import dataclasses  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from importlib import resources  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


@functools.cache
def _imagenet_classes() -> tuple[str, ...]:
    text = resources.files("cnnlab.models").joinpath("imagenet_classes.json").read_text(encoding="utf-8")
    return tuple(json.loads(text))


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet-1k class names in index order (WordNet lemmas, from timm's ImageNetInfo).

    Returns:
        A new list of 1,000 names (e.g. index 281 is "tabby, tabby cat").
    """
    return list(_imagenet_classes())


def translate_in_order(src: Mapping[str, Any], dst: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    """Rename ``src``'s tensors to ``dst``'s keys one-to-one in order, checking every shape.

    Used when two implementations of the same architecture register the same tensors in the same order
    under different names (lukemelas-style EfficientNet -> timm; torchvision -> cnnlab's regrouping).

    Args:
        src: Source state dict (its order matters).
        dst: Target state dict (keys and shapes).
        what: Name of the source for error messages (a file or package).

    Returns:
        A state dict with ``dst``'s keys and ``src``'s tensors.

    Raises:
        ModelError: Different number of tensors, or a shape / tensor-kind mismatch at some position.
    """
    from ..errors import ModelError

    if len(src) != len(dst):
        raise ModelError(
            f"{what}: {len(src)} tensors, the model expects {len(dst)}; the file is for another model"
        )
    out: dict[str, Any] = {}
    for (sk, sv), (dk, dv) in zip(src.items(), dst.items(), strict=True):
        if tuple(sv.shape) != tuple(dv.shape) or sk.rsplit(".", 1)[-1] != dk.rsplit(".", 1)[-1]:
            raise ModelError(
                f"{what}: tensor {sk!r} {tuple(sv.shape)} does not match the model's {dk!r} {tuple(dv.shape)}"
            )
        out[dk] = sv
    return out


def read_state_dict(path: Path) -> dict[str, Any]:
    """Read a state dict from ``.safetensors`` or a ``.pth``/``.pt``/``.ckpt`` (``weights_only=True``).

    A Lightning checkpoint's ``state_dict`` is unwrapped; a ``model.`` prefix on every key is dropped.

    Raises:
        ModelError: Missing or unreadable file, naming it.
    """
    import torch

    from ..errors import ModelError

    if not path.is_file():
        raise ModelError(f"{path}: no such file; give a .pth or .safetensors state dict", param="weights")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reader failure is a bad file for the user: say which and why
        text = str(exc).strip()
        # torch's refusal of pickled code goes on for lines, ending in "weights_only=False": the first
        # sentence says it all (and that advice, for a file of unknown origin, is not cnnlab's to give)
        first = text.splitlines()[0].split(". ")[0] if text else ""
        raise ModelError(
            f"{path}: cannot read it as a state dict ({type(exc).__name__}: {first})", param="weights"
        ) from None
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping) or not all(hasattr(v, "shape") for v in sd.values()):
        raise ModelError(f"{path}: not a state dict of tensors", param="weights")
    sd = dict(sd)
    for prefix in ("model.", "module."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def load_weights_file(model: Any, path: Path, *, model_name: str) -> None:
    """Load a local state dict into ``model`` strictly (cnnlab keys, or the upstream library's keys).

    Upstream keys (e.g. a torchvision ``resnet18-*.pth``) are mapped through the model's
    ``upstream_state_dict_keys`` translation when the model provides ``load_upstream_state_dict``.

    Raises:
        ModelError: The file's tensors do not fit the model, naming the file and the first mismatch.
    """
    from ..errors import ModelError

    sd = read_state_dict(path)
    own = model.state_dict()
    if set(sd) == set(own):
        bad = [k for k in own if tuple(sd[k].shape) != tuple(own[k].shape)]
        if bad:
            k = bad[0]
            raise ModelError(
                f"{path}: {k!r} has shape {tuple(sd[k].shape)}, {model_name} needs "
                f"{tuple(own[k].shape)} (other num_classes / in_chans?)",
                param="weights",
            )
        model.load_state_dict(sd, strict=True)
    elif hasattr(model, "load_upstream_state_dict"):
        try:
            model.load_upstream_state_dict(sd, what=str(path))
        except ModelError as exc:
            raise ModelError(exc.message, param="weights") from None
    else:
        missing = sorted(set(own) - set(sd))[:2]
        extra = sorted(set(sd) - set(own))[:2]
        raise ModelError(
            f"{path}: keys do not match {model_name} (missing {missing}, unexpected {extra}); "
            "give a state dict saved from this model",
            param="weights",
        )
    # Zoo models know the preprocessing their architecture's released weights use; a local file of such
    # weights keeps it (course nets have none: their runs record mean/std themselves).
    base = model.pretrained_cfg or getattr(model, "default_pretrained_cfg", None)
    if base is not None:
        model.pretrained_cfg = dataclasses.replace(base, source=str(path))
