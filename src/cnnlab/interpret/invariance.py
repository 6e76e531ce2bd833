"""Translation and rotation invariance, measured: a run's accuracy on shifted and rotated inputs.

"Convolutions and pooling give (approximate) translation invariance" and "global average pooling
is more tolerant of position than Flatten" become curves: the accuracy of each run on its own
validation images moved by 0..k pixels (the mean over the four directions left, right, up and down,
the uncovered border filled with 0, the background of MNIST-like data) and rotated by a few
degrees (the mean over both signs, bilinear, filled with 0). Every point is
:func:`cnnlab.train.evaluate.evaluate` on the moved images, so shift 0 is exactly ``evaluate``'s accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ArgumentError
from ..values import check_number

if TYPE_CHECKING:
    from ..data import ImageTensorDataset
    from ..runfolder.folder import LoadedRun

__all__ = ["MAX_ANGLE", "InvarianceCurve", "measure_invariance", "rotate_images", "shift_images"]

#: The largest rotation in degrees, either way (a full turn).
MAX_ANGLE = 360.0

DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (rows, cols): right, left, down, up


def shift_images(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Move images ``[N, C, H, W]`` by ``dy`` rows and ``dx`` columns, filling the uncovered border with 0."""
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_r, dst_r = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
    src_c, dst_c = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
    out[..., dst_r, dst_c] = images[..., src_r, src_c]
    return out


def rotate_images(images: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate images ``[N, C, H, W]`` by ``angle`` degrees counter-clockwise about their centre (0 fill)."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    return TF.rotate(images, float(angle), interpolation=InterpolationMode.BILINEAR, fill=0.0)


@dataclass
class InvarianceCurve:
    """Accuracy of one run under shifts and rotations of its validation images.

    Attributes:
        label: How the run is named (its folder).
        model: The run's model name.
        data: The data the images come from.
        shifts: Shifts in pixels (0, 1, ..., k).
        shift_accuracy: Accuracy per shift (the mean over the four directions).
        angles: Rotation angles in degrees (0 first).
        rotation_accuracy: Accuracy per angle (the mean over +angle and -angle).
        chance: Accuracy of always guessing (1 / classes).
        images: How many images each point is measured on.
    """

    label: str
    model: str
    data: str
    shifts: list[int] = field(default_factory=list)
    shift_accuracy: list[float] = field(default_factory=list)
    angles: list[float] = field(default_factory=list)
    rotation_accuracy: list[float] = field(default_factory=list)
    chance: float = 0.0
    images: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (one entry of ``cnnlab invariance --json``'s ``runs``)."""
        return {
            "run": self.label, "model": self.model, "data": self.data, "images": self.images,
            "chance": self.chance, "shifts": self.shifts, "shift_accuracy": self.shift_accuracy,
            "angles": self.angles, "rotation_accuracy": self.rotation_accuracy,
        }


def measure_invariance(
    run: LoadedRun,
    dataset: ImageTensorDataset,
    *,
    max_shift: int = 4,
    angles: Sequence[float] = (5, 10, 15, 20),
    spec: str = "data",
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> InvarianceCurve:
    """Accuracy of ``run`` on ``dataset`` shifted by 0..``max_shift`` pixels and rotated by ``angles``.

    Args:
        run: A run folder read by :func:`cnnlab.train.load_run`.
        dataset: The images (the run's validation split, usually).
        max_shift: The largest shift in pixels (0 measures the unshifted images only).
        angles: Rotation angles in degrees (each measured at + and -; 0 is the unrotated accuracy).
        spec: How the data was named.
        batch_size: Images per forward pass.
        progress: Called with ``(evaluations done, total)``.

    Returns:
        An :class:`InvarianceCurve`.
    """
    from ..data import ImageTensorDataset
    from ..train.evaluate import evaluate

    if max_shift < 0:
        raise ArgumentError(f"must be at least 0, got {max_shift}", param="max_shift")
    size = min(dataset.images.shape[-2:])
    if max_shift >= size:
        raise ArgumentError(f"{max_shift} px moves a {size}-px image out of view; use less",
                            param="max_shift")
    angles = [check_number(a, "angles", low=-MAX_ANGLE, high=MAX_ANGLE, example="5,10,15") for a in angles]
    angles = [a for a in angles if a != 0.0]
    total = 1 + 4 * max_shift + 2 * len(angles)
    done = 0

    def accuracy(images: torch.Tensor) -> float:
        nonlocal done
        moved = ImageTensorDataset(images, dataset.labels, dataset.classes, dataset.paths)
        acc = evaluate(run, moved, spec=spec, batch_size=batch_size, top_losses=0).accuracy
        done += 1
        if progress is not None:
            progress(done, total)
        return acc

    base = accuracy(dataset.images)
    shifted = [base] + [
        sum(accuracy(shift_images(dataset.images, s * dy, s * dx)) for dy, dx in DIRECTIONS) / 4
        for s in range(1, max_shift + 1)
    ]
    rotated = [base] + [
        (accuracy(rotate_images(dataset.images, a)) + accuracy(rotate_images(dataset.images, -a))) / 2
        for a in angles
    ]
    classes = max(2, len(run.classes))
    return InvarianceCurve(
        label=str(run.path), model=run.config.model_name, data=spec, shifts=list(range(max_shift + 1)),
        shift_accuracy=shifted, angles=[0.0, *angles], rotation_accuracy=rotated, chance=1.0 / classes,
        images=len(dataset),
    )
