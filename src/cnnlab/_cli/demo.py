"""`cnnlab demo`: the whole story on the embedded Fashion-MNIST sample, offline, in about two minutes.

The demo runs the real commands with the exact arguments it prints (so a user can copy any line), each
writing into one folder: data -> filters -> summary -> train -> evaluate -> explain -> features -> report.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import typer

from ._app import app, console


def _step(title: str, argv: list[str]) -> None:
    """Print ``cnnlab ARGV`` under a heading and run it through the same CLI a user types."""
    from typer.main import get_command

    console.rule(f"[bold]{title}[/bold]")
    console.print(f"$ cnnlab {shlex.join(argv)}", markup=False, highlight=False)
    start = time.perf_counter()
    get_command(app).main(args=argv, prog_name="cnnlab", standalone_mode=False)
    console.print(f"[dim]{time.perf_counter() - start:.1f} s[/dim]")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="folder for everything the demo writes"),
    epochs: int = typer.Option(3, "--epochs", min=1, help="training epochs on the sample"),
) -> None:
    """Main job on the embedded sample, offline: data, filters, model summary, training, evaluation, CAM."""
    from .._io import ensure_writable_dir
    from ..data import load_data
    from ..images import save_image
    from ..runfolder.folder import demo_run_to_replace

    ensure_writable_dir(out, option="--out")
    start = time.perf_counter()
    run = out / "run"
    again = ["--overwrite"] if demo_run_to_replace(run) else []  # an earlier demo's run: replaced
    _step("1. The data: the embedded Fashion-MNIST sample",
          ["data", "sample", "--out", str(out), "--augment", "standard"])
    _step("2. Classical convolution: a Gabor filter bank",
          ["filters", "--bank", "gabor", "--out", str(out / "gabor.png")])
    _step("3. The network: shapes, parameters, mult-adds, receptive field",
          ["summary", "mnist_cnn", "--input", "1x28x28"])
    _step("4. Training mnist_cnn on the sample",
          ["train", "--data", "sample", "--model", "mnist_cnn", "--epochs", str(epochs), "--out", str(run),
           *again])
    _step("5. Evaluation on the held-out split", ["evaluate", str(run)])
    bundle = load_data("sample")
    picks: list[str] = []
    for c in range(0, len(bundle.classes), 3):  # a few test images of different classes, as PNG files
        idx = int((bundle.val.labels == c).nonzero()[0, 0])
        name = bundle.classes[c].replace("/", "-").replace(" ", "_")
        picks.append(str(save_image(out / "images" / f"{name}.png", bundle.val.images[idx])))
    _step("6. Where the network looks: Grad-CAM",
          ["explain", str(run), *picks, "--out", str(out / "gradcam.png")])
    _step("7. What a layer sees: feature maps",
          ["features", str(run), picks[0], "--out", str(out / "features.png")])
    report = out / "report.html"
    _step("8. The whole story in one file: the report", ["report", str(run), "--out", str(report)])
    console.rule("[bold]done[/bold]")
    console.print(
        f"The demo took {time.perf_counter() - start:.0f} s. Everything is in {out}/: the data grids, the "
        f"Gabor responses, the trained run in {run}/ (curves.png, metrics.csv, model.safetensors, "
        f"confusion.png), gradcam.png, features.png and {report}: open it in a browser, one self-contained "
        "file with the data, the model, the curves, the mistakes and where the network looked. Next: "
        "`cnnlab train --data fashion-mnist --model "
        "mnist_cnn` on the full data, or `cnnlab train --data FOLDER --model efficientnet_lite0 "
        "--pretrained --transfer features` on your own photos.",
        markup=False, highlight=False,
    )
