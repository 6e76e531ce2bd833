"""Fixtures for the data tests: a folder of awkward image files built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _gradient(h: int, w: int) -> np.ndarray:
    """An RGB image whose top half is red and bottom half blue, so orientation is testable."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[: h // 2, :, 0] = 220
    arr[h // 2 :, :, 2] = 220
    return arr


def make_awkward_files(folder: Path) -> dict[str, Path]:
    """Write one file of each awkward kind into ``folder``; returns name -> path.

    Good: rgba.png, cmyk.jpg, sixteen.png, gray.jpg, exif_rot.jpg, palette.png, plain.jpg.
    Bad: truncated.jpg, empty.jpg, text.jpg.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    arr = _gradient(40, 60)

    p = folder / "plain.jpg"
    Image.fromarray(arr).save(p, quality=95)
    files["plain"] = p

    full = folder / "full.jpg"
    Image.fromarray(_gradient(200, 300)).save(full, quality=95)
    data = full.read_bytes()
    full.unlink()
    p = folder / "truncated.jpg"
    p.write_bytes(data[: len(data) // 2])
    files["truncated"] = p

    p = folder / "empty.jpg"
    p.write_bytes(b"")
    files["empty"] = p

    p = folder / "text.jpg"
    p.write_text("this is not an image\n")
    files["text"] = p

    rgba = np.dstack([arr, np.full(arr.shape[:2], 255, np.uint8)])
    rgba[:5, :5, 3] = 0  # a transparent corner: composited on white
    p = folder / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(p)
    files["rgba"] = p

    p = folder / "cmyk.jpg"
    Image.fromarray(arr).convert("CMYK").save(p, quality=95)
    files["cmyk"] = p

    sixteen = (np.linspace(0, 65535, 60, dtype=np.float64)[None, :].repeat(40, 0)).astype(np.uint16)
    p = folder / "sixteen.png"
    Image.fromarray(sixteen).save(p)
    files["sixteen"] = p

    p = folder / "gray.jpg"
    Image.fromarray(arr).convert("L").save(p, quality=95)
    files["gray"] = p

    # Stored sideways (60 wide x 40 high rotated to 40 x 60) with orientation 6 = "rotate 270 to view":
    # a viewer shows it as the original 40 x 60 red-over-blue image.
    stored = Image.fromarray(arr).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    p = folder / "exif_rot.jpg"
    stored.save(p, quality=95, exif=exif.tobytes())
    files["exif_rot"] = p

    p = folder / "palette.png"
    Image.fromarray(arr).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(p)
    files["palette"] = p
    return files


@pytest.fixture
def awkward_files(tmp_path: Path) -> dict[str, Path]:
    return make_awkward_files(tmp_path / "awkward")


@pytest.fixture
def make_awkward() -> object:
    """The builder itself, to write awkward files into any folder."""
    return make_awkward_files
