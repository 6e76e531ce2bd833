"""`cnnlab filters`: run a classical filter bank (Gabor, Sobel, Haar, ...) over images and draw it.

The work is :func:`cnnlab.report.filter_responses.filter_response_files`; the ``--bank`` choices come from
the bank registry when the option is parsed or shown (lazily: ``cnnlab --help`` stays fast).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..report.filter_responses import MAX_COLUMNS, MAX_ROWS  # light: the module imports torch lazily
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
    kernels and responses within the memory budget (CNNLAB_MAX_MEMORY_GB).
    """
    from ..filters.params import bank_params, build_bank
    from ..report.filter_responses import filter_response_files

    options = {"--frequencies": frequencies, "--thetas": thetas, "--sigmas": sigmas, "--phases": phases,
               "--bandwidth": bandwidth, "--gamma": gamma, "--haar-form": haar_form}
    fbank = build_bank(bank, *bank_params(bank, options, param))
    doc = filter_response_files(fbank, inputs or [], out=out, padding=padding, max_images=max_images,
                                max_filters=max_filters)
    if json_out:
        print_json(doc)
        return
    kh, kw = fbank.kernel_size
    console.print(f"{bank}: {fbank.out_channels} kernels {kh}x{kw} over {len(doc['images'])} image(s)")
    typer.echo(f"kernel grid:   {doc['figures']['kernels']}")
    typer.echo(f"response grid: {doc['figures']['responses']}")
