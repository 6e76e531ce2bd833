"""Start-up: how long a user waits for the first answer, whole process, against the floor it cannot beat.

Measured side by side, interleaved, each command in a fresh process (medians of ``--repeats``):

* an argument/path error (``cnnlab data /missing``) against ``cnnlab --help``       target <= 1.5x
* ``cnnlab models`` against ``python -c "import torch"``                          target <= 1.2x
* ``cnnlab predict RUN one.png`` against a minimal script that imports torch, loads the same
  ``model.safetensors`` into the same network and classifies the same image        target <= 1.3x

Beside them, for information: a one-command Typer app failing on its one argument (the floor of any
argument error under Typer), and one cProfile run of the path error showing where its time goes.

The run is a 1-epoch ``mnist_cnn`` on the embedded sample, trained first in a temporary folder.

Usage:
    python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

MINIMAL = """
import sys, torch
from collections import OrderedDict as D
from PIL import Image
from safetensors.torch import load_file
from torch import nn
run, image = sys.argv[1], sys.argv[2]
def block(c_in, c_out, pool):  # mnist_cnn, written out by hand with cnnlab's module names
    layers = [("conv", nn.Conv2d(c_in, c_out, 3)), ("relu", nn.ReLU())] + ([("pool", nn.MaxPool2d(2))] * pool)
    return nn.Sequential(D(layers))
features = nn.Sequential(D(block1=block(1, 32, 1), block2=block(32, 64, 1), block3=block(64, 64, 0)))
head = nn.Sequential(D(flatten=nn.Flatten(), fc1=nn.Linear(576, 64), relu=nn.ReLU(), fc=nn.Linear(64, 10)))
net = nn.Sequential(D(features=features, head=head))
net.load_state_dict(load_file(run + "/model.safetensors"))
x = torch.frombuffer(bytearray(Image.open(image).convert("L").resize((28, 28)).tobytes()), dtype=torch.uint8)
with torch.inference_mode():
    p = net.eval()(x.view(1, 1, 28, 28).float() / 255).softmax(1)
print(int(p.argmax()), float(p.max()))
"""


def _typer_version() -> str:
    from importlib.metadata import version

    return version("typer")


def _time(argv: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


#: The floor of any argument error under Typer: a one-command Typer app that fails on its one argument
#: (Typer >= 0.2x coerces every parameter through a pydantic ``TypeAdapter`` before the command runs).
TYPER_FLOOR = """
import sys, typer
app = typer.Typer(add_completion=False)
@app.command()
def data(spec: str) -> None:
    sys.exit(f"error: folder {spec} does not exist")
@app.command()
def other() -> None: ...
app()
"""


def _profile(argv: list[str], cwd: Path) -> dict[str, float]:
    """cProfile of one run of ``argv`` (a ``python -m cnnlab ...`` command): where its time goes."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    out = cwd / "startup.prof"
    subprocess.run([argv[0], "-m", "cProfile", "-o", str(out), *argv[1:]], cwd=cwd, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # fmt: skip
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    cum: dict[str, float] = {"total": max(v[3] for v in stats.values())}
    for (file, _, func), (_, _, _, ct, _) in stats.items():
        if file.endswith("typer/_coercion.py") and func == "build_runtime_param":
            cum["typer parameter coercion (build_runtime_param)"] = ct
        if file.endswith("typer/_adapters.py") and func == "<module>":
            cum["of it: importing typer._adapters (pydantic)"] = ct
        if file.endswith("cnnlab/cli.py") and func == "<module>":
            cum["importing cnnlab.cli (also paid by --help)"] = ct
    return cum


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    cnnlab = [py, "-m", "cnnlab"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train = ["train", "--data", "sample", "--model", "mnist_cnn", "--epochs", "1", "--limit", "300",
                 "--no-progress", "--out", "run"]
        subprocess.run([*cnnlab, *train], cwd=work, check=True, capture_output=True)
        sys.path.insert(0, str(HERE.parent / "src"))
        from cnnlab.data import load_data
        from cnnlab.images import save_image

        save_image(work / "one.png", load_data("sample").val.images[0])
        (work / "minimal.py").write_text(MINIMAL)
        (work / "typer_floor.py").write_text(TYPER_FLOOR)
        cases = {
            "help": [*cnnlab, "--help"],
            "missing_path": [*cnnlab, "data", "/missing/folder"],
            "typer_floor": [py, "typer_floor.py", "data", "/missing/folder"],
            "import_torch": [py, "-c", "import torch"],
            "models": [*cnnlab, "models"],
            "minimal_predict": [py, "minimal.py", "run", "one.png"],
            "predict": [*cnnlab, "predict", "run", "one.png"],
        }
        for argv in cases.values():  # warm the file cache once
            _time(argv, work)
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeats):
            for name, argv in cases.items():
                times[name].append(_time(argv, work))
        profile = _profile(cases["missing_path"], work)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {
        "missing_path / help": (med["missing_path"] / med["help"], 1.5),
        "missing_path / typer floor (info)": (med["missing_path"] / med["typer_floor"], None),
        "models / import torch": (med["models"] / med["import_torch"], 1.2),
        "predict / minimal script": (med["predict"] / med["minimal_predict"], 1.3),
    }
    load = os.getloadavg()[0]
    command = f"python benchmarks/startup.py --repeats {args.repeats}"
    RESULTS.mkdir(exist_ok=True)
    doc = {"command": command, "repeats": args.repeats, "load_average_1min": load,
           "median_seconds": med, "ratios": {k: {"ratio": r, "target": t} for k, (r, t) in ratios.items()},
           "profile_missing_path_cumulative_s": profile}
    (RESULTS / "startup.json").write_text(json.dumps(doc, indent=2) + "\n")
    rows = "\n".join(
        f"| {k} | {r:.2f}x | " + ("| |" if t is None else f"<= {t}x | {'met' if r <= t else 'not met'} |")
        for k, (r, t) in ratios.items()
    )
    prof = ", ".join(f"{k} {v:.3f} s" for k, v in profile.items())
    times_md = ", ".join(f"{k} {v:.2f} s" for k, v in med.items())
    md = f"""## startup

Whole-process wall time of the first answer, each command in a fresh process, {args.repeats} interleaved
repeats (medians), load average {load:.2f} at the end. Command: `{command}`.

| ratio | measured | target | |
|---|---|---|---|
{rows}

Medians: {times_md}. `typer_floor` is a one-command Typer app that fails on its one `str` argument: the
least any argument error costs under Typer {_typer_version()}, which coerces every parameter of the
command through a pydantic `TypeAdapter` (importing pydantic) before the command body runs.

The path error takes {med["missing_path"] - med["help"]:.2f} s more than `--help`; where
`cnnlab data /missing/folder` spends its time (one `python -m cProfile` run, cumulative seconds,
profiler overhead included): {prof}.
"""
    (RESULTS / "startup.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
