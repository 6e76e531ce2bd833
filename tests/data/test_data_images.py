"""cnnlab.images: conversion of awkward files, errors, heatmap overlay, atomic save."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.errors import DataError
from cnnlab.images import decode_image, overlay_heatmap, read_image, save_image

BAD = ("truncated", "empty", "text")


@pytest.mark.parametrize("name", ["plain", "rgba", "cmyk", "gray", "exif_rot", "palette"])
def test_good_files_load_rgb_right_way_up(awkward_files: dict[str, Path], name: str) -> None:
    img = read_image(awkward_files[name])
    assert img.dtype == torch.uint8 and img.shape == (3, 40, 60)
    top, bottom = img[:, 10, 30].int(), img[:, 30, 30].int()
    if name == "gray":
        assert top[0] == top[1] == top[2] and bottom[0] == bottom[1] == bottom[2]
        # ITU-R 601 luma of (220, 0, 0) = 66 and of (0, 0, 220) = 25 (JPEG rounding allowed)
        assert abs(int(top[0]) - 66) <= 3 and abs(int(bottom[0]) - 25) <= 3
    else:
        assert top[0] > 180 and top[2] < 40, f"{name}: top should be red, got {top.tolist()}"
        assert bottom[2] > 180 and bottom[0] < 40, f"{name}: bottom should be blue, got {bottom.tolist()}"


def test_rgba_transparent_pixels_are_white(awkward_files: dict[str, Path]) -> None:
    img = read_image(awkward_files["rgba"])
    assert img[:, 0, 0].tolist() == [255, 255, 255]
    assert img[:, 10, 10].tolist() == [220, 0, 0]


def test_sixteen_bit_scaled_against_numpy(awkward_files: dict[str, Path]) -> None:
    raw = np.asarray(Image.open(awkward_files["sixteen"])).astype(np.float64)
    assert raw.max() == 65535  # the file really is 16-bit
    expected = np.round(raw / 65535 * 255).astype(np.uint8)
    got = read_image(awkward_files["sixteen"], mode="L")[0].numpy()
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("name", BAD)
def test_bad_files_raise_one_line_data_error(awkward_files: dict[str, Path], name: str) -> None:
    with pytest.raises(DataError) as info:
        read_image(awkward_files[name])
    msg = str(info.value)
    assert str(awkward_files[name]) in msg and "\n" not in msg
    keyword = {"truncated": "truncated", "empty": "empty", "text": "not an image"}[name]
    assert keyword in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "nope.png")


def test_draft_resize_close_to_full_decode(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(base).resize((600, 500), Image.Resampling.BICUBIC))
    p = tmp_path / "big.jpg"
    Image.fromarray(big).save(p, quality=95)
    fast = np.asarray(decode_image(p, size=(50, 60))).astype(int)
    full = np.asarray(Image.open(p).convert("RGB").resize((60, 50), Image.Resampling.BILINEAR)).astype(int)
    assert fast.shape == (50, 60, 3)
    assert np.abs(fast - full).mean() < 4.0


def test_overlay_heatmap_matches_manual_blend() -> None:
    from matplotlib import colormaps

    img = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    hm = torch.rand(8, 8)
    out = overlay_heatmap(img, hm, alpha=0.3, cmap="viridis")
    colour = colormaps["viridis"](hm.numpy())[..., :3].transpose(2, 0, 1)
    expected = np.clip(np.round((0.7 * img.numpy() / 255 + 0.3 * colour) * 255), 0, 255)
    assert out.dtype == torch.uint8 and out.shape == (3, 8, 8)
    assert np.abs(out.numpy().astype(int) - expected.astype(int)).max() <= 1


def test_overlay_resizes_heatmap_and_accepts_gray() -> None:
    img = torch.full((1, 16, 20), 100, dtype=torch.uint8)
    out = overlay_heatmap(img, torch.zeros(4, 5), alpha=0.0)
    assert out.shape == (3, 16, 20) and bool((out == 100).all())
    with pytest.raises(DataError, match="colormap"):
        overlay_heatmap(img, torch.zeros(4, 5), cmap="nope")


def test_save_image_roundtrip(tmp_path: Path) -> None:
    img = torch.randint(0, 256, (3, 9, 7), dtype=torch.uint8)
    path = save_image(tmp_path / "sub" / "x.png", img)
    assert torch.equal(read_image(path), img)
    gray = img[:1]
    assert torch.equal(read_image(save_image(tmp_path / "g.png", gray), mode="L"), gray)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.png"]  # no temp file left behind
