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
