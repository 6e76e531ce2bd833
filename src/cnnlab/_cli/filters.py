"""`cnnlab filters`: run a classical filter bank (Gabor, Sobel, Haar, ...) over images and draw it.

The inputs are image files, or one data SPEC (``sample``, ``mnist``, ``fashion-mnist``, a folder, a CSV)
from which a few images per class are picked (round-robin over classes, the first images of each class in
the val split: deterministic). Heavy imports (torch, the filters package, matplotlib) happen inside the
command, so ``cnnlab --help`` stays fast; the ``--bank`` choices come from the bank registry when the
option is parsed or shown. Banks, kernels and responses are bounded up front (``cnnlab.filters._limits``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer

from ..errors import CnnlabError
from ._app import app, console, print_json

if TYPE_CHECKING:
    import torch

    from ..filters import FilterBank

#: The most images (rows) and responses (columns) one response grid draws.
MAX_ROWS, MAX_COLUMNS = 32, 64
#: Options that belong to one bank: option -> (bank, parameter).
_BANK_OPTIONS = {"--frequencies": ("gabor", "frequencies"), "--thetas": ("gabor", "thetas"),
                 "--sigmas": ("gabor", "sigmas"), "--phases": ("gabor", "phases"),
                 "--bandwidth": ("gabor", "bandwidth"), "--gamma": ("gabor", "gamma"),
                 "--haar-form": ("haar", "form")}


def _bank_name(value: str) -> str:
    """Parse ``--bank``: a name from the bank registry (read lazily: importing it imports torch)."""
    from ..filters import list_banks

    choices = list_banks()
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not a filter bank; choose from {', '.join(choices)}")
    return value


def _complete_bank(incomplete: str) -> list[str]:
    from ..filters import list_banks

    return [name for name in list_banks() if name.startswith(incomplete)]


def _numbers(option: str, text: str) -> list[float]:
    """Parse "0.1,0.2" into floats, or a one-line error naming the option."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CnnlabError(f"{option} {text}: expected comma-separated numbers, e.g. 0.1,0.2") from None
    if not values:
        raise CnnlabError(f"{option} {text!r}: give at least one number")
    return values


def _value(text: str) -> Any:
    """A --param value: int, float, a comma list of them, or the text itself."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    out: list[Any] = []
    for p in parts:
        try:
            out.append(int(p))
        except ValueError:
            try:
                out.append(float(p))
            except ValueError:
                out.append(p)
    return out if "," in text else (out[0] if out else text)


def bank_params(bank: str, options: dict[str, Any],
                params: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Collect the bank's keyword parameters from its own options and repeated ``--param KEY=VALUE``.

    Angles on the command line are in degrees (the library takes radians).

    Args:
        bank: The bank name.
        options: Bank options as given (``{"--thetas": "4", "--gamma": None, ...}``; None = not given).
        params: The ``--param KEY=VALUE`` items.

    Returns:
        The keyword parameters, and for each one how the user wrote it (e.g. ``"--thetas 4"``), so that an
        error about a parameter can name the option.
    """
    given = {opt: v for opt, v in options.items() if v is not None}
    wrong = [opt for opt in given if _BANK_OPTIONS[opt][0] != bank]
    if wrong:
        owner = _BANK_OPTIONS[wrong[0]][0]
        raise CnnlabError(f"{', '.join(wrong)} only apply to --bank {owner}; "
                          f"use --param KEY=VALUE for {bank}")
    kw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt, text in given.items():
        key = _BANK_OPTIONS[opt][1]
        sources[key] = f"{opt} {text}"
        if key == "thetas":
            vals = _numbers(opt, text)
            count = "," not in text and vals[0].is_integer()
            kw[key] = int(vals[0]) if count else [math.radians(v) for v in vals]  # a count, or degrees
        elif key == "phases":
            kw[key] = [math.radians(v) for v in _numbers(opt, text)]
        elif key in ("frequencies", "sigmas"):
            kw[key] = _numbers(opt, text)
        else:
            kw[key] = text
    for item in params:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CnnlabError(f"--param {item}: expected KEY=VALUE, e.g. --param sigmas=1,2")
        kw[key.strip()] = _value(text)
        sources[key.strip()] = f"--param {item}"
    return kw, sources


def _build_bank(bank: str, kw: dict[str, Any], sources: dict[str, str]) -> FilterBank:
    """``make_bank`` with errors about a parameter naming the option the user typed."""
    from ..filters import BankParamError, make_bank

    try:
        return make_bank(bank, **kw)
    except BankParamError as exc:
        if exc.param in sources:
            raise CnnlabError(f"{sources[exc.param]}: {exc.reason}") from None
        raise


def _is_spec(text: str) -> bool:
    from ..data import list_datasets

    path = Path(text).expanduser()
    return text in list_datasets() or path.is_dir() or path.suffix.lower() == ".csv"


def _spec_images(spec: str, n: int) -> tuple[list[torch.Tensor], list[str]]:
    """Up to ``n`` grey images of SPEC, labelled with their class.

    Round-robin over classes, the first images of each class: from the val split, then (when it holds
    fewer than ``n``) from the train split. Only about ``n`` images per split are decoded.
    """
    from ..data import load_data
    from ..report.grids import pick_per_class

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


def _inputs(inputs: Sequence[str], n: int) -> tuple[list[torch.Tensor], list[str]]:
    """Image files (read as grey, each labelled with its name), or a few images per class of one SPEC.

    A folder of image files without class sub-folders counts as its first ``n`` image files.
    """
    if not inputs:
        return _spec_images("sample", n)
    flat = _flat_folder_images(inputs[0], n) if len(inputs) == 1 else None
    inputs = flat or inputs
    specs = [t for t in inputs if _is_spec(t)]
    if specs and len(inputs) > 1:
        raise CnnlabError(f"INPUTS {' '.join(inputs)}: give one data SPEC ({specs[0]}) or image files, "
                          "not both")
    only = inputs[0]
    if specs or (len(inputs) == 1 and not Path(only).suffix and not Path(only).exists()):
        return _spec_images(only, n)  # a mistyped SPEC gets load_data's one-line error with the names
    if len(inputs) > MAX_ROWS:
        raise CnnlabError(f"IMAGE: {len(inputs)} files, but the response grid takes at most {MAX_ROWS} "
                          "images; pass fewer files, or a folder/SPEC with --max-images")
    from ..images import read_image

    return [read_image(p, mode="L") for p in inputs], [Path(p).name for p in inputs]


def _check_responses(fbank: FilterBank, images: Sequence[torch.Tensor], padding: Literal["same", "valid"],
                     keep: int) -> None:
    """Refuse up front when one image's responses plus the ones kept for the figure exceed the budget."""
    from ..filters import response_shape
    from ..filters._limits import check_memory

    shapes = [response_shape(fbank, int(t.shape[-2]), int(t.shape[-1]), padding=padding) for t in images]
    full = max(r * h * w for r, h, w in shapes)
    kept = sum(min(r, keep) * h * w for r, h, w in shapes)
    r, h, w = shapes[0]
    what = f"{fbank.name} responses ({len(images)} image(s) x {r} x {h}x{w} float32)"
    check_memory(4 * (full + kept), what, "use fewer kernels, or fewer or smaller images (--max-images)")


@app.command()
def filters(
    inputs: list[str] | None = typer.Argument(
        None, metavar="SPEC | IMAGE",
        help="a data SPEC (sample, mnist, fashion-mnist, a folder, a .csv: a few images per class) or image "
             "files (default: sample)",
    ),
    bank: str = typer.Option(
        "gabor", "--bank", parser=_bank_name, autocompletion=_complete_bank, metavar="NAME",
        help="a registered filter bank (an unknown name lists them all)",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="response-grid PNG (default runs/filters/<bank>.png); kernels: <out>_kernels.png"
    ),
    json_out: bool = typer.Option(False, "--json", help="print filters, figures, stats as JSON"),
    frequencies: str | None = typer.Option(None, "--frequencies", help="gabor: cycles/pixel, e.g. 0.1,0.2"),
    thetas: str | None = typer.Option(None, "--thetas", help="gabor: N orientations, or degrees 0,45,90"),
    sigmas: str | None = typer.Option(None, "--sigmas", help="gabor: Gaussian widths in px"),
    phases: str | None = typer.Option(None, "--phases", help="gabor: phase offsets in degrees, e.g. 0,90"),
    bandwidth: float | None = typer.Option(None, "--bandwidth", help="gabor: octaves (default 1)"),
    gamma: float | None = typer.Option(None, "--gamma", help="gabor: sigma_x/sigma_y (default 1)"),
    haar_form: str | None = typer.Option(
        None, "--haar-form", metavar="FORM",
        help="haar: three-rectangle weights, zero-mean (OpenCV -1/+2/-1, default) or unbalanced "
             "(Viola-Jones paper, scikit-image: -1/+1/-1)",
    ),
    param: list[str] = typer.Option([], "--param", help="other bank parameters, KEY=VALUE (e.g. sigmas=1,2)"),
    padding: str = typer.Option("same", "--padding", help="same (keep H x W) or valid (no padding)"),
    max_images: int = typer.Option(4, "--max-images", min=1, max=MAX_ROWS,
                                   help="images picked from a SPEC (round-robin over classes) or folder"),
    max_filters: int = typer.Option(16, "--max-filters", min=1, max=MAX_COLUMNS,
                                    help="response columns in the grid"),
) -> None:
    """Run a classical filter bank over images: kernel grid and response grid (images x filters).

    Limits (refused up front): at most CNNLAB_MAX_FILTERS kernels (1024), kernels up to 257 px a side,
    kernels and responses within CNNLAB_FILTERS_MAX_MB MiB (1024).
    """
    from .._io import ensure_writable_dir, save_figure
    from ..filters import apply_bank
    from ..report.filters_plots import kernel_grid_figure, response_grid_figure

    options = {"--frequencies": frequencies, "--thetas": thetas, "--sigmas": sigmas, "--phases": phases,
               "--bandwidth": bandwidth, "--gamma": gamma, "--haar-form": haar_form}
    kw, sources = bank_params(bank, options, param)
    if padding not in ("same", "valid"):
        raise CnnlabError(f"--padding {padding}: use same (keep H x W) or valid (no padding)")
    pad: Literal["same", "valid"] = "same" if padding == "same" else "valid"
    fbank = _build_bank(bank, kw, sources)
    out = out if out is not None else Path("runs/filters") / f"{bank}.png"
    if out.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg"):
        raise CnnlabError(f"--out {out}: give an image file name ending in .png, .pdf, .svg or .jpg")
    ensure_writable_dir(out.parent)
    kernels_path = out.with_name(f"{out.stem}_kernels{out.suffix}")

    tensors, labels = _inputs(inputs or [], max_images)
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
                               nonnegative=fbank.nonnegative_responses, title=f"{bank} responses")
    save_figure(out, fig)

    if json_out:
        print_json({
            "bank": bank,
            "kernel_size": list(fbank.kernel_size),
            "stride": fbank.stride,
            "filters": [{"name": n, "params": p} for n, p in zip(fbank.names, fbank.params, strict=True)],
            "responses": names,
            "images": [{"source": lab, "shape": list(t.shape)}
                       for lab, t in zip(labels, tensors, strict=True)],
            "mean_abs_response": means,
            "figures": {"kernels": str(kernels_path), "responses": str(out)},
        })
        return
    kh, kw_ = fbank.kernel_size
    console.print(f"{bank}: {fbank.out_channels} kernels {kh}x{kw_} over {len(tensors)} image(s)")
    typer.echo(f"kernel grid:   {kernels_path}")
    typer.echo(f"response grid: {out}")
