"""A generated localisation dataset: one bright shape at a random position on noise, class = shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def shape_image(rng: np.random.Generator, shape: str, size: int = 64) -> tuple[np.ndarray, tuple[int, ...]]:
    """uint8 [size, size] image and the shape's box (x0, y0, x1, y1), inclusive pixel bounds."""
    side = int(rng.integers(16, 23))
    x0 = int(rng.integers(0, size - side))
    y0 = int(rng.integers(0, size - side))
    x1, y1 = x0 + side - 1, y0 + side - 1
    noise = rng.integers(0, 64, size=(size, size)).astype(np.uint8)
    img = Image.fromarray(noise, mode="L")
    draw = ImageDraw.Draw(img)
    fill = int(rng.integers(224, 256))
    if shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x0, y1), (x1, y1)], fill=fill)
    return np.asarray(img), (x0, y0, x1, y1)


def write_shapes(root: Path, *, n_train: int, n_val: int, seed: int = 0) -> dict[str, tuple[int, ...]]:
    """Write root/{train,val}/<shape>/*.png; returns the box of every val image by path."""
    rng = np.random.default_rng(seed)
    boxes: dict[str, tuple[int, ...]] = {}
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            shape = SHAPES[i % len(SHAPES)]
            arr, box = shape_image(rng, shape)
            path = root / split / shape / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr, mode="L").save(path)
            if split == "val":
                boxes[str(path)] = box
    return boxes
