"""`cnnlab filters`: run a classical filter bank (Gabor, Sobel, Haar, ...) over images and draw it.

Heavy imports (torch, the filters package, matplotlib) happen inside the command, so ``cnnlab --help``
stays fast; the ``--bank`` choices come from the bank registry when the option is parsed or shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import typer

from ..errors import CnnlabError
from ._app import app, console, print_json


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


def bank_params(bank: str, *, frequencies: str | None, thetas: str | None, sigmas: str | None,
                phases: str | None, bandwidth: float | None, gamma: float | None,
                params: Sequence[str]) -> dict[str, Any]:
    """Collect the bank's keyword parameters from the Gabor options and repeated ``--param KEY=VALUE``.

    Angles on the command line are in degrees (the library takes radians).
    """
    gabor_opts = {"--frequencies": frequencies, "--thetas": thetas, "--sigmas": sigmas, "--phases": phases,
                  "--bandwidth": bandwidth, "--gamma": gamma}
    given = [k for k, v in gabor_opts.items() if v is not None]
    if given and bank != "gabor":
        raise CnnlabError(f"{', '.join(given)} only apply to --bank gabor; use --param KEY=VALUE for {bank}")
    kw: dict[str, Any] = {}
    if frequencies is not None:
        kw["frequencies"] = _numbers("--frequencies", frequencies)
    if thetas is not None:
        vals = _numbers("--thetas", thetas)
        if "," not in thetas and vals[0].is_integer():
            kw["thetas"] = int(vals[0])  # a count of orientations
        else:
            kw["thetas"] = [math.radians(v) for v in vals]
    if sigmas is not None:
        kw["sigmas"] = _numbers("--sigmas", sigmas)
    if phases is not None:
        kw["phases"] = [math.radians(v) for v in _numbers("--phases", phases)]
    if bandwidth is not None:
        kw["bandwidth"] = bandwidth
    if gamma is not None:
        kw["gamma"] = gamma
    for item in params:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CnnlabError(f"--param {item}: expected KEY=VALUE, e.g. --param sigmas=1,2")
        kw[key.strip()] = _value(text)
    return kw


def _sample_images(n: int) -> tuple[list[Any], list[str]]:
    """The first ``n`` images of distinct classes from the embedded Fashion-MNIST sample."""
    from ..data import load_data

    bundle = load_data("sample")
    labels = bundle.val.labels.tolist()
    picked: list[int] = []
    for c in range(len(bundle.classes)):
        if c in labels and len(picked) < n:
            picked.append(labels.index(c))
    return [bundle.val.images[i] for i in picked], [bundle.classes[labels[i]] for i in picked]


@app.command()
def filters(
    images: list[Path] | None = typer.Argument(
        None, help="image files (default: a few images of the embedded Fashion-MNIST sample)"
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
    param: list[str] = typer.Option([], "--param", help="other bank parameters, KEY=VALUE (e.g. sigmas=1,2)"),
    padding: str = typer.Option("same", "--padding", help="same (keep H x W) or valid (no padding)"),
    max_images: int = typer.Option(4, "--max-images", min=1, help="sample images shown when none are given"),
    max_filters: int = typer.Option(16, "--max-filters", min=1, help="response columns in the grid"),
) -> None:
    """Run a classical filter bank over images: kernel grid and response grid (images x filters)."""
    from .._io import ensure_writable_dir, save_figure
    from ..filters import apply_bank, make_bank
    from ..report.filters_plots import kernel_grid_figure, response_grid_figure

    kw = bank_params(bank, frequencies=frequencies, thetas=thetas, sigmas=sigmas, phases=phases,
                     bandwidth=bandwidth, gamma=gamma, params=param)
    if padding not in ("same", "valid"):
        raise CnnlabError(f"--padding {padding}: use same (keep H x W) or valid (no padding)")
    pad: Literal["same", "valid"] = "same" if padding == "same" else "valid"
    fbank = make_bank(bank, **kw)
    out = out if out is not None else Path("runs/filters") / f"{bank}.png"
    if out.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg"):
        raise CnnlabError(f"--out {out}: give an image file name ending in .png, .pdf, .svg or .jpg")
    ensure_writable_dir(out.parent)
    kernels_path = out.with_name(f"{out.stem}_kernels{out.suffix}")

    if images:
        from ..images import read_image

        tensors = [read_image(p, mode="L") for p in images]
        labels = [p.name for p in images]
    else:
        tensors, labels = _sample_images(max_images)
    responses = [apply_bank(t, fbank, padding=pad)[0] for t in tensors]  # one batched call per image

    save_figure(kernels_path, kernel_grid_figure(fbank))
    names = fbank.response_names
    fig = response_grid_figure(tensors, responses, names, max_filters=max_filters, row_labels=labels,
                               title=f"{bank} responses")
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
            "mean_abs_response": [[float(v) for v in r.abs().mean(dim=(1, 2))] for r in responses],
            "figures": {"kernels": str(kernels_path), "responses": str(out)},
        })
        return
    kh, kw_ = fbank.kernel_size
    console.print(f"{bank}: {fbank.out_channels} kernels {kh}x{kw_} over {len(tensors)} image(s)")
    typer.echo(f"kernel grid:   {kernels_path}")
    typer.echo(f"response grid: {out}")
