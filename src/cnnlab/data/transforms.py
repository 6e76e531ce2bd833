"""Transforms: batched uint8 augmentation presets, normalisation, and the eval pipeline.

Augmentation runs on whole uint8 batches [B, C, H, W] (on whatever device they are on) with its
own random parameters for every sample. torchvision.transforms.v2 draws one parameter set per call,
which for a batch means every image gets the same rotation; so the geometric part here composes one
affine matrix per sample (rotation, shear, zoom, shift, flip) and warps the batch in a single
``affine_grid``/``grid_sample`` call, and colour jitter draws per-sample factors.

Presets (``AUGMENT_PRESETS``):
  - ``none``: identity.
  - ``light``: rotation ±10°, zoom ±10%, shift ±10%; no flip, no colour change, so it is safe for
    digits and text, where a mirrored sample can change class.
  - ``standard``: the classic pipeline: rotation ±40°, zoom ±20%, shift ±20%, shear ±20°, horizontal
    flip, colour jitter 0.2 (brightness, contrast, saturation).
  - ``strong``: rotation ±45°, zoom ±30%, shift ±25%, shear ±25°, flip, jitter 0.4.
  - ``series``: for series data only (``ucr:``/``series:``; see :mod:`cnnlab.data.series_augment`):
    Gaussian jitter (σ 0.03), per-series scaling (σ 0.1) and window slicing (a random 90% window
    stretched back to the full length), the three of Um et al. (2017) and Le Guennec et al. (2016).
Empty space uncovered by a warp repeats the border pixels (Keras' ``fill_mode="nearest"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataArgumentError, DataError, did_you_mean

if TYPE_CHECKING:
    from ..models._weights import PretrainedCfg


@dataclass(frozen=True)
class AugmentPreset:
    """Ranges of the per-sample random augmentation (all symmetric around "no change").

    Attributes:
        rotation: Max rotation in degrees.
        zoom: Max relative zoom (0.2 -> scale in [0.8, 1.2]).
        shift: Max translation as a fraction of width/height.
        shear: Max shear angle in degrees (along x).
        hflip: Probability of a horizontal flip.
        jitter: Max relative brightness/contrast/saturation change.
        noise: Series: standard deviation of the Gaussian noise added to every sample (jitter).
        scaling: Series: standard deviation of the per-series factor the series is multiplied by.
        window: Series: fraction of the length a random window keeps before it is stretched back (1 = off).
    """

    rotation: float = 0.0
    zoom: float = 0.0
    shift: float = 0.0
    shear: float = 0.0
    hflip: float = 0.0
    jitter: float = 0.0
    noise: float = 0.0
    scaling: float = 0.0
    window: float = 1.0

    @property
    def is_identity(self) -> bool:
        return self == AugmentPreset()

    @property
    def for_series(self) -> bool:
        """True for a series preset (noise, scaling or window slicing), which images cannot take."""
        return bool(self.noise or self.scaling or self.window != 1.0)

    @property
    def for_images(self) -> bool:
        """True for an image preset (geometry or colour), which series cannot take."""
        return bool(self.rotation or self.zoom or self.shift or self.shear or self.hflip or self.jitter)


AUGMENT_PRESETS: dict[str, AugmentPreset] = {}


def register_augment(name: str, preset: AugmentPreset) -> AugmentPreset:
    """Add a named preset; a duplicate name raises ValueError."""
    if name in AUGMENT_PRESETS:
        raise ValueError(f"augment preset {name!r} is already registered")
    AUGMENT_PRESETS[name] = preset
    return preset


register_augment("none", AugmentPreset())
register_augment("light", AugmentPreset(rotation=10, zoom=0.1, shift=0.1))
register_augment("standard", AugmentPreset(rotation=40, zoom=0.2, shift=0.2, shear=20, hflip=0.5, jitter=0.2))
register_augment("strong", AugmentPreset(rotation=45, zoom=0.3, shift=0.25, shear=25, hflip=0.5, jitter=0.4))
register_augment("series", AugmentPreset(noise=0.03, scaling=0.1, window=0.9))


def get_preset(preset: str | AugmentPreset) -> AugmentPreset:
    """Look up a preset by name (DataError listing the valid names when unknown)."""
    if isinstance(preset, AugmentPreset):
        return preset
    if preset not in AUGMENT_PRESETS:
        choices, hint = ", ".join(AUGMENT_PRESETS), did_you_mean(preset, AUGMENT_PRESETS)
        raise DataArgumentError(f"{preset!r}: unknown preset; {hint}choose one of {choices}", param="augment")
    return AUGMENT_PRESETS[preset]


def _uniform(n: int, limit: float, g: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * limit


def affine_matrices(
    p: AugmentPreset, n: int, height: int, width: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw per-sample forward transforms ``x' = A x + t`` in pixel units centred on the image.

    ``A = R(rotation) @ Shear(shear) @ diag(flip * zoom, zoom)``; ``t`` is the shift in pixels.

    Returns:
        (A [n, 2, 2], t [n, 2]) as float64.
    """
    rot = torch.deg2rad(_uniform(n, p.rotation, g))
    shear = torch.deg2rad(_uniform(n, p.shear, g))
    zoom = 1.0 + _uniform(n, p.zoom, g)
    flip = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < p.hflip, -1.0, 1.0)
    t = torch.stack([_uniform(n, p.shift * width, g), _uniform(n, p.shift * height, g)], dim=1)
    cos, sin = torch.cos(rot), torch.sin(rot)
    r = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    sh = torch.eye(2, dtype=torch.float64).repeat(n, 1, 1)
    sh[:, 0, 1] = torch.tan(shear)
    sc = torch.diag_embed(torch.stack([flip * zoom, zoom], dim=1))
    return r @ sh @ sc, t


def affine_thetas(a: torch.Tensor, t: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``affine_grid`` matrices [n, 2, 3] (output -> input, normalised coordinates) for ``x' = A x + t``.

    ``affine_grid`` needs the inverse map in [-1, 1] coordinates: ``S^-1 A^-1 S`` and ``-S^-1 A^-1 t``
    with ``S = diag(W/2, H/2)``.
    """
    a_inv = torch.linalg.inv(a)
    s = torch.tensor([width / 2.0, height / 2.0], dtype=torch.float64)
    lin = a_inv * s[None, None, :] / s[None, :, None]
    trans = -(a_inv @ t[:, :, None])[:, :, 0] / s
    return torch.cat([lin, trans[:, :, None]], dim=2)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def colour_jitter(x: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """Per-sample brightness, contrast and saturation factors in [1 - amount, 1 + amount] (float 0..255)."""
    n = x.shape[0]
    f = (1.0 + _uniform(3 * n, amount, g)).to(device=x.device, dtype=x.dtype).view(3, n, 1, 1, 1)
    x = (x * f[0]).clamp_(0, 255)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * f[1] + mean).clamp_(0, 255)
    if x.shape[1] == 3:
        gray = _gray(x)
        x = ((x - gray) * f[2] + gray).clamp_(0, 255)
    return x


class BatchAugment(nn.Module):
    """Augment a uint8 batch [B, C, H, W] with fresh random parameters for every sample.

    Deterministic: the module owns a ``torch.Generator`` seeded with ``seed``, so the same seed and the
    same sequence of calls give the same batches; pass ``generator=`` to ``forward`` to override.

    Args:
        preset: A name in ``AUGMENT_PRESETS`` or an :class:`AugmentPreset`.
        seed: Seed of the module's generator.
    """

    def __init__(self, preset: str | AugmentPreset = "standard", *, seed: int = 0) -> None:
        super().__init__()
        self.preset = get_preset(preset)
        if self.preset.for_series:
            raise DataArgumentError(
                f"{preset!r} augments series (ucr:/series: data); for images use light, standard or strong",
                param="augment",
            )
        self.generator = torch.Generator().manual_seed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the random stream (e.g. seed + epoch at the start of each epoch)."""
        self.generator.manual_seed(seed)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise DataError(f"BatchAugment expects uint8 [B,C,H,W], got {images.dtype} {list(images.shape)}")
        p, g = self.preset, generator or self.generator
        if p.is_identity or images.shape[0] == 0:
            return images
        b, c, h, w = images.shape
        x = images.float()
        if p.rotation or p.zoom or p.shift or p.shear or p.hflip:
            theta = affine_thetas(*affine_matrices(p, b, h, w, g), h, w).to(device=x.device, dtype=x.dtype)
            grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if p.jitter:
            x = colour_jitter(x, p.jitter, g)
        return x.round_().clamp_(0, 255).to(torch.uint8)

    def extra_repr(self) -> str:
        return repr(self.preset)


class Normalize(nn.Module):
    """uint8 [B, C, H, W] (or [C, H, W]) -> float32 ``(x / 255 - mean) / std`` per channel.

    A single mean/std value is broadcast over all channels. Float series ``[B, C, L]`` are in their own
    units (no pixel scale): they become ``(x - mean) / std``.
    """

    def __init__(self, mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,)) -> None:
        super().__init__()
        if any(s <= 0 for s in std):
            raise DataError(f"std {tuple(std)}: every value must be positive")
        as_col = lambda v: torch.tensor(list(v), dtype=torch.float64).view(-1, 1, 1)  # noqa: E731
        m, s = as_col(mean), as_col(std)
        self.register_buffer("mean", m.float(), persistent=False)
        self.register_buffer("std", s.float(), persistent=False)
        # (x / 255 - mean) / std == x * scale + shift: one multiply-add pass over the batch.
        self.register_buffer("scale", (1.0 / (255.0 * s)).float(), persistent=False)
        self.register_buffer("shift", (-m / s).float(), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.is_floating_point():  # series: real values, not 0..255 pixels
            mean, std = cast(torch.Tensor, self.mean), cast(torch.Tensor, self.std)
            return (images.to(torch.float32) - mean.view(-1, 1)) / std.view(-1, 1)
        shift, scale = cast(torch.Tensor, self.shift), cast(torch.Tensor, self.scale)
        return torch.addcmul(shift, images.to(torch.float32), scale)


def _eval_geometry(cfg: PretrainedCfg) -> list[Any]:
    """The weights' eval geometry on uint8 images: channels, short-side resize to size / crop_pct, crop."""
    from torchvision.transforms import InterpolationMode, v2

    channels, height, width = cfg.input_size
    interp = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
              "nearest": InterpolationMode.NEAREST}.get(cfg.interpolation)
    if interp is None:
        raise DataError(f"interpolation {cfg.interpolation!r}: use bilinear, bicubic or nearest")
    crop = cfg.crop_pct if cfg.crop_pct else 1.0
    if height == width:
        resize = v2.Resize(math.floor(height / crop), interpolation=interp, antialias=True)
    else:
        resize = v2.Resize((int(height / crop), int(width / crop)), interpolation=interp, antialias=True)
    colour = v2.RGB() if channels == 3 else v2.Grayscale(1)
    return [v2.ToImage(), colour, resize, v2.CenterCrop((height, width))]


def eval_transform(cfg: PretrainedCfg) -> Any:
    """The evaluation pipeline a set of weights expects, for one PIL image or uint8 [C, H, W] tensor.

    Resize the short side to ``size / crop_pct``, centre-crop ``size``, convert to float in [0, 1]
    and normalise with the weights' mean/std (torchvision.transforms.v2). The channel count follows
    ``cfg.input_size[0]`` (grey images are copied to RGB, RGB made grey).

    Args:
        cfg: The weights' :class:`~cnnlab.models._weights.PretrainedCfg`.

    Returns:
        A callable ``image -> float32 [C, H, W]``.
    """
    from torchvision.transforms import v2

    return v2.Compose([
        *_eval_geometry(cfg),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(cfg.mean), list(cfg.std)),
    ])


@dataclass(frozen=True)
class Preprocess:
    """How image files become a model's input: the one place that decodes, sizes and normalises.

    Two geometries: a run's own (``weights is None``: decode and resize to H x W exactly as the
    training data was, :func:`cnnlab.images.decode_image`), or a set of pretrained weights' eval
    geometry (short-side resize to ``size / crop_pct`` and centre crop, :func:`eval_transform`'s).
    Both give uint8 images (to draw) that :meth:`normalize` turns into the model's float input.

    Attributes:
        image_size: (C, H, W) the model takes.
        mean: Per-channel mean (0-1 units).
        std: Per-channel std.
        weights: The pretrained weights' preprocessing whose geometry is used, or None.
    """

    image_size: tuple[int, ...]  # (C, H, W); (C, L) for series
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: PretrainedCfg | None = None

    @classmethod
    def from_weights(cls, cfg: PretrainedCfg) -> Preprocess:
        """The eval preprocessing a set of weights records (its size, mean/std, resize and crop)."""
        size = (int(cfg.input_size[0]), int(cfg.input_size[1]), int(cfg.input_size[2]))
        return cls(size, tuple(cfg.mean), tuple(cfg.std), cfg)

    def load(self, paths: Sequence[Any]) -> torch.Tensor:
        """Decode image files to uint8 ``[N, C, H, W]`` at the model's size (what :meth:`normalize` takes).

        Raises:
            DataError: A file is missing or cannot be decoded (naming it).
        """
        from ..images import decode_image, pil_to_tensor

        c, h, w = self.image_size
        mode: Literal["L", "RGB"] = "L" if c == 1 else "RGB"
        if self.weights is None:
            return torch.stack([pil_to_tensor(decode_image(p, mode=mode, size=(h, w))) for p in paths])
        from torchvision.transforms import v2

        geometry = v2.Compose(_eval_geometry(self.weights))
        return torch.stack([geometry(decode_image(p, mode=mode)) for p in paths])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images ``[N, C, H, W]`` -> the model's input ``(x / 255 - mean) / std``, on their device.

        The same map as :class:`Normalize`, which training fuses into one multiply-add; the two differ
        only by float rounding (evaluation keeps this form so that recorded results stay comparable).
        """
        if images.is_floating_point():  # series [N, C, L]: their own units, no pixel scale
            mean = torch.tensor(self.mean, dtype=torch.float32, device=images.device).view(1, -1, 1)
            std = torch.tensor(self.std, dtype=torch.float32, device=images.device).view(1, -1, 1)
            return (images.float() - mean) / std
        mean = torch.tensor(self.mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
        return (images.float() / 255.0 - mean) / std

    def __call__(self, paths: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(uint8 images to draw, normalised input)`` of image files."""
        raw = self.load(paths)
        return raw, self.normalize(raw)
