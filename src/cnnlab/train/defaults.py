"""The model a run gets when none is named, and why: a good first result on the user's own data.

* A folder (or CSV) of photos: the offline pretrained ``efficientnet_lite0`` with ``--transfer features``
  (its ImageNet features, a new head trained on cached embeddings). On the 800 + 200 cats-vs-dogs photos
  it reaches 99.0% in 3 epochs where the course's ``cats_cnn`` from scratch sits at chance (50.5-51.5%); a
  features-then-partial schedule (``--transfer partial --fine-tune-schedule 1``) scored one validation image
  more (99.5%, inside the noise of 200 images) and ran the whole backbone every epoch: 1434 s against 49 s
  warm at the same load (README, Timings).
* ``sample``, ``mnist``, ``fashion-mnist`` (1x28x28 digits and clothes) and folders of small grayscale
  images: the course CNN (``mnist_cnn``; ``mnist_cnn_gap`` when the size is not 28), because an ImageNet
  backbone is the wrong tool for them (RGB photos at 224 px).

Nothing here imports torch: a folder is judged from a few files' headers (PIL reads no pixels).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DefaultChoice", "default_choice"]

#: Photos of at most this side (pixels) that are all grayscale count as small grayscale images.
SMALL_SIDE = 64
#: Files whose headers are read to judge a folder.
PEEK_FILES = 16
_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
PHOTO_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class DefaultChoice:
    """The default of a run without ``model``.

    Attributes:
        model: A registry name.
        pretrained: Start from the model's pretrained weights.
        transfer: The transfer mode (``features`` for the pretrained backbone, else ``scratch``).
        img_size: The size to train at when the run leaves it open (None: the data's own).
        reason: Why, in one line (printed by ``cnnlab train``).
    """

    model: str
    pretrained: bool = False
    transfer: str = "scratch"
    img_size: int | None = None
    reason: str = ""


def _peek(data: str) -> list[tuple[str, tuple[int, int]]]:
    """(mode, size) of the first few images of a folder, from their headers; [] when none is found."""
    from PIL import Image

    root = Path(data)
    if not root.is_dir():
        return []
    found: list[tuple[str, tuple[int, int]]] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if Path(name).suffix.lower() not in _SUFFIXES:
                continue
            try:
                with Image.open(Path(folder) / name) as im:
                    found.append((im.mode, im.size))
            except (OSError, ValueError):
                continue
            if len(found) >= PEEK_FILES:
                return found
    return found


def default_choice(data: str, img_size: int | None = None) -> DefaultChoice:
    """The model (and weights, transfer mode) a run on ``data`` gets when it names none, with the reason.

    Args:
        data: The data SPEC.
        img_size: The run's ``img_size`` (None keeps the data's own).

    Returns:
        A :class:`DefaultChoice`.
    """
    from ..data.datasets import list_datasets  # the registered names: all 1x28x28 IDX data
    from ..data.series import is_series_spec

    if is_series_spec(data):
        return DefaultChoice("fcn1d", reason="model fcn1d, the fully convolutional network of Wang et al. "
                             "(2017) for time series")
    if data in list_datasets():
        if img_size in (None, 28):
            return DefaultChoice("mnist_cnn", reason=f"model mnist_cnn, the course CNN for {data}'s 28x28 "
                                 "grayscale images (an ImageNet backbone is the wrong tool for them)")
        return DefaultChoice("mnist_cnn_gap", reason=f"model mnist_cnn_gap, the course CNN for {data}'s "
                             "grayscale images at any size (global pooling)")
    seen = _peek(data)
    if seen and all(m in ("1", "L", "LA", "I", "I;16", "P") for m, _ in seen) and \
            max(max(s) for _, s in seen) <= SMALL_SIDE:
        side = img_size or max(28, max(max(s) for _, s in seen))
        return DefaultChoice("mnist_cnn_gap", img_size=side, reason=(
            f"model mnist_cnn_gap at {side} px, the course CNN for small grayscale images (these are at "
            f"most {max(max(s) for _, s in seen)} px; an ImageNet backbone is the wrong tool for them)"))
    return DefaultChoice(PHOTO_MODEL, pretrained=True, transfer="features", reason=(
        f"model {PHOTO_MODEL} with its offline pretrained ImageNet weights, transfer features (the "
        "backbone frozen, a new head trained on cached embeddings): on photos it learns in a few epochs "
        "where a net trained from scratch stays at chance (the course's CNN: `--model cats_cnn`)"))
