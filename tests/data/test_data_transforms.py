"""cnnlab.data.transforms: per-sample batched augmentation checked against OpenCV, determinism, presets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from cnnlab.data.transforms import (
    AUGMENT_PRESETS,
    AugmentPreset,
    BatchAugment,
    Normalize,
    affine_matrices,
    eval_transform,
    register_augment,
)
from cnnlab.errors import DataError


def _smooth_batch(b: int, c: int, h: int, w: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    small = torch.rand(b, c, h // 4, w // 4, generator=g) * 255
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear").round().to(torch.uint8)


def test_geometry_matches_opencv_warp_affine() -> None:
    preset = AugmentPreset(rotation=40, zoom=0.2, shift=0.2, shear=20, hflip=0.5)
    x = _smooth_batch(6, 3, 32, 40)
    out = BatchAugment(preset, seed=3)(x)
    a, t = affine_matrices(preset, 6, 32, 40, torch.Generator().manual_seed(3))
    centre = np.array([(40 - 1) / 2, (32 - 1) / 2])
    for i in range(6):
        ai, ti = a[i].numpy(), t[i].numpy()
        m = np.hstack([ai, (centre + ti - ai @ centre)[:, None]])
        img = x[i].permute(1, 2, 0).numpy().astype(np.float32)
        ref = cv2.warpAffine(img, m, (40, 32), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        got = out[i].permute(1, 2, 0).numpy().astype(np.float32)
        assert np.abs(got - np.round(ref)).mean() < 0.6, f"sample {i}"


def test_parameters_differ_per_sample() -> None:
    x = _smooth_batch(1, 3, 24, 24).repeat(8, 1, 1, 1)
    out = BatchAugment("standard", seed=0)(x)
    flat = out.flatten(1).float()
    assert all(not torch.equal(flat[0], flat[i]) for i in range(1, 8))


def test_flip_only_is_exact() -> None:
    x = _smooth_batch(4, 1, 16, 20)
    out = BatchAugment(AugmentPreset(hflip=1.0), seed=0)(x)
    assert torch.equal(out, torch.flip(x, dims=[3]))


def test_same_seed_same_batches_and_none_is_identity() -> None:
    x = _smooth_batch(5, 3, 20, 20)
    a, b = BatchAugment("strong", seed=7), BatchAugment("strong", seed=7)
    first = [a(x), a(x)]
    assert torch.equal(first[0], b(x)) and torch.equal(first[1], b(x))
    assert not torch.equal(first[0], first[1])  # the stream advances between calls
    assert not torch.equal(BatchAugment("strong", seed=8)(x), first[0])
    assert BatchAugment("none")(x) is x
    assert BatchAugment("light")(x).dtype == torch.uint8


def test_light_never_flips_and_jitter_stays_in_range() -> None:
    assert AUGMENT_PRESETS["light"].hflip == 0.0
    std = AUGMENT_PRESETS["standard"]
    assert (std.rotation, std.zoom, std.shear, std.hflip, std.jitter) == (40, 0.2, 20, 0.5, 0.2)
    x = torch.full((16, 3, 8, 8), 100, dtype=torch.uint8)
    x[:, 0] = 200
    out = BatchAugment(AugmentPreset(jitter=0.2), seed=0)(x).float()
    mean = out.mean(dim=(1, 2, 3))
    # brightness alone moves the mean by at most 20 %, contrast/saturation keep it
    assert bool(((mean >= x.float().mean() * 0.79) & (mean <= x.float().mean() * 1.21)).all())
    assert mean.std() > 1.0  # factors differ per sample


def test_registry_rejects_duplicates_and_unknown_names() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_augment("standard", AugmentPreset())
    with pytest.raises(DataError, match="none, light, standard, strong"):
        BatchAugment("wild")


def test_normalize_matches_formula() -> None:
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    got = Normalize(mean, std)(x)
    ref = (x.float() / 255 - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    assert got.dtype == torch.float32 and torch.allclose(got, ref, atol=1e-6)
    assert torch.allclose(Normalize((0.5,), (0.5,))(x), x.float() / 127.5 - 1, atol=1e-6)


def test_eval_transform_resize_crop_normalize() -> None:
    from PIL import Image

    from cnnlab.models._weights import PretrainedCfg

    cfg = PretrainedCfg(source="test", input_size=(3, 224, 224), crop_pct=0.875)
    tf = eval_transform(cfg)
    img = Image.fromarray(np.full((300, 400, 3), 128, np.uint8))
    out = tf(img)
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    expected = (128 / 255 - torch.tensor(cfg.mean)) / torch.tensor(cfg.std)
    assert torch.allclose(out[:, 100, 100], expected, atol=1e-5)
    gray = tf(torch.full((1, 50, 60), 128, dtype=torch.uint8))
    assert gray.shape == (3, 224, 224)
