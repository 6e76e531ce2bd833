"""A classical filter bank over a few images, written as a kernel grid and a response grid.

The inputs are image files, or one data SPEC (``sample``, ``mnist``, ``fashion-mnist``, a folder, a CSV)
from which a few images per class are picked (round-robin over classes, the first images of each class in
the val split: deterministic). :func:`filter_response_files` returns the record ``cnnlab filters --json``
prints. Banks, kernels and responses are bounded up front (``cnnlab.filters._limits`` and the memory budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ArgumentError, CnnlabError

if TYPE_CHECKING:
    import torch

    from ..filters import FilterBank

__all__ = ["MAX_COLUMNS", "MAX_ROWS", "filter_response_files", "pick_images"]

#: The most images (rows) and responses (columns) one response grid draws.
MAX_ROWS, MAX_COLUMNS = 32, 64


def _is_data_spec(text: str) -> bool:
    from ..data import list_datasets

    path = Path(text).expanduser()
    return text in list_datasets() or path.is_dir() or path.suffix.lower() == ".csv"


def _spec_images(spec: str, n: int) -> tuple[list[torch.Tensor], list[str]]:
    """Up to ``n`` grey images of SPEC, labelled with their class.

    Round-robin over classes, the first images of each class: from the val split, then (when it holds
    fewer than ``n``) from the train split. Only about ``n`` images per split are decoded.
    """
    from ..data import load_data
    from .grids import pick_per_class

    bundle = load_data(spec, limit=n, grayscale=True, use_cache=False)
    images: list[torch.Tensor] = []
    labels: list[str] = []
    for split in (bundle.val, bundle.train):
        for i in pick_per_class(split.labels, n - len(images), len(split.classes)).tolist():
            images.append(split.images[i])
            labels.append(split.classes[int(split.labels[i])])
    return images, labels


def _flat_folder_images(text: str, n: int) -> list[str] | None:
    """The first ``n`` image files (by name) of a folder without sub-folders, else None (a data SPEC)."""
    from ..data.folders import IMAGE_EXTENSIONS

    path = Path(text).expanduser()
    if not path.is_dir() or any(p.is_dir() for p in path.iterdir()):
        return None
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    return [str(p) for p in files[:n]] or None


def pick_images(inputs: Sequence[str], n: int) -> tuple[list[torch.Tensor], list[str]]:
    """Image files (read as grey, each labelled with its name), or a few images per class of one SPEC.

    A folder of image files without class sub-folders counts as its first ``n`` image files; no input
    means the embedded sample.
    """
    if not inputs:
        return _spec_images("sample", n)
    flat = _flat_folder_images(inputs[0], n) if len(inputs) == 1 else None
    inputs = flat or inputs
    specs = [t for t in inputs if _is_data_spec(t)]
    if specs and len(inputs) > 1:
        raise CnnlabError(f"INPUTS {' '.join(inputs)}: give one data SPEC ({specs[0]}) or image files, "
                          "not both")
    only = inputs[0]
    if specs or (len(inputs) == 1 and not Path(only).suffix and not Path(only).exists()):
        return _spec_images(only, n)  # a mistyped SPEC gets load_data's one-line error with the names
    if len(inputs) > MAX_ROWS:
        raise CnnlabError(f"IMAGE: {len(inputs)} files, but the response grid takes at most {MAX_ROWS} "
                          "images; pass fewer files, or a folder/SPEC with `max_images`")
    from ..images import read_image

    return [read_image(p, mode="L") for p in inputs], [Path(p).name for p in inputs]


def _check_responses(fbank: FilterBank, images: Sequence[torch.Tensor], padding: Literal["same", "valid"],
                     keep: int) -> None:
    """Refuse up front when one image's responses plus the ones kept for the figure exceed the budget."""
    from ..filters import response_shape
    from ..memory import check_memory

    shapes = [response_shape(fbank, int(t.shape[-2]), int(t.shape[-1]), padding=padding) for t in images]
    full = max(r * h * w for r, h, w in shapes)
    kept = sum(min(r, keep) * h * w for r, h, w in shapes)
    r, h, w = shapes[0]
    what = f"{fbank.name} responses ({len(images)} image(s) x {r} x {h}x{w} float32)"
    check_memory(4 * (full + kept), what, "use fewer kernels, or fewer or smaller images (`max_images`)")


def filter_response_files(fbank: FilterBank, inputs: Sequence[str], *, out: Path | None = None,
                          padding: str = "same", max_images: int = 4,
                          max_filters: int = 16) -> dict[str, Any]:
    """Run ``fbank`` over images and save its kernel grid and response grid (images x filters).

    Args:
        fbank: The bank (:func:`cnnlab.filters.params.build_bank` or :func:`cnnlab.filters.make_bank`).
        inputs: Image files, one folder of them, or one data SPEC (none: the sample).
        out: The response grid (default ``runs/filters/<bank>.png``); the kernels go to ``<out>_kernels``.
        padding: ``same`` (keep H x W) or ``valid`` (no padding).
        max_images: Images picked from a SPEC or a folder.
        max_filters: Response columns drawn.

    Returns:
        ``{bank, kernel_size, stride, filters: [{name, params}], responses, images: [{source, shape}],
        mean_abs_response, figures: {kernels, responses}}``.
    """
    from .._io import ensure_writable_dir, save_figure
    from ..filters import apply_bank
    from ..runfolder.folder import check_output
    from .filters_plots import kernel_grid_figure, response_grid_figure

    if padding not in ("same", "valid"):
        raise ArgumentError(f"{padding}: use same (keep H x W) or valid (no padding)", param="padding")
    pad: Literal["same", "valid"] = "same" if padding == "same" else "valid"
    out = out if out is not None else Path("runs/filters") / f"{fbank.name}.png"
    if out.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg"):
        raise ArgumentError(f"{out}: give an image file name ending in .png, .pdf, .svg or .jpg", param="out")
    ensure_writable_dir(out.parent)
    kernels_path = out.with_name(f"{out.stem}_kernels{out.suffix}")
    for path in (out, kernels_path):
        check_output(path)

    tensors, labels = pick_images(inputs, max_images)
    _check_responses(fbank, tensors, pad, max_filters)
    shown, means = [], []
    for t in tensors:  # one batched call per image; keep only the columns the figure draws
        r = apply_bank(t, fbank, padding=pad)[0]
        means.append([float(v) for v in r.abs().mean(dim=(1, 2))])
        shown.append(r[:max_filters].clone())
        del r

    save_figure(kernels_path, kernel_grid_figure(fbank))
    names = fbank.response_names
    fig = response_grid_figure(tensors, shown, names, max_filters=max_filters, row_labels=labels,
                               nonnegative=fbank.nonnegative_responses, title=f"{fbank.name} responses")
    save_figure(out, fig)
    return {
        "bank": fbank.name,
        "kernel_size": list(fbank.kernel_size),
        "stride": fbank.stride,
        "filters": [{"name": n, "params": p} for n, p in zip(fbank.names, fbank.params, strict=True)],
        "responses": names,
        "images": [{"source": lab, "shape": list(t.shape)} for lab, t in zip(labels, tensors, strict=True)],
        "mean_abs_response": means,
        "figures": {"kernels": str(kernels_path), "responses": str(out)},
    }
