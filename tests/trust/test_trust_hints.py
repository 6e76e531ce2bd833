"""Every hint names options the command has: the error lines of ~60 refused commands, walked against --help.

Issue 20: ``cnnlab predict weights.pt IMG`` said "give --model NAME --weights FILE", and ``predict`` has no
``--weights``; ``train --data mnist`` without the files said "add --download", which only ``data`` has.
Library messages name options in backticks and the CLI prints them as flags; a message shared by several
commands may name an option one of them lacks. Each case here is refused (exit 2, one ``error:`` line), and
every ``--flag`` in its line must be an option of that command (``cnnlab CMD --help`` lists it). A flag
inside a quoted command (```cnnlab train --weights FILE```) names that command's option and is left out.
The fuzz (``test_trust_fuzz.py``) walks the hints of every refusal it provokes in the same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _trust import command_options, foreign_flags, invoke, refused
from typer.main import get_command

from cnnlab.cli import app

GROUP = get_command(app)


def test_the_walk_finds_a_foreign_flag() -> None:
    """The checker itself: the issue's message is caught, a quoted command's flags are not."""
    assert foreign_flags("predict", "error: give the model name and the file (--model NAME --weights FILE)") \
        == {"--weights"}
    quoted = "error: x; `cnnlab train --model NAME --weights FILE` trains from it"
    assert foreign_flags("predict", quoted) == set()
    assert foreign_flags("train", "error: --data-dir DIR, or add --download") == {"--download"}
    assert {"--no-progress", "--overwrite", "--resume"} <= command_options("train")


@pytest.fixture(scope="module")
def files(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A run, an image, a weights file that does not record its architecture, an empty and a damaged run."""
    import shutil

    import torch

    from cnnlab.data import load_data
    from cnnlab.images import save_image

    tmp = tmp_path_factory.mktemp("hints")
    image = save_image(tmp / "x.png", load_data("sample", limit=1).val.images[0])
    torch.save({"w": torch.zeros(2)}, tmp / "weights.pt")
    (tmp / "nodata").mkdir()
    damaged = tmp / "damaged"
    shutil.copytree(tiny_run, damaged)
    info = json.loads((damaged / "run.json").read_text())
    (damaged / "run.json").write_text(json.dumps({**info, "model": "bogus"}))
    return {"RUN": str(tiny_run), "IMG": str(image), "WEIGHTS": str(tmp / "weights.pt"), "TMP": str(tmp),
            "NODATA": str(tmp / "nodata"), "DAMAGED": str(damaged)}


NO_DATA = {"CNNLAB_DATA_DIR": "NODATA"}
#: (arguments, environment): each refused. RUN, IMG, WEIGHTS, TMP, NODATA and DAMAGED stand for the files.
CASES: list[tuple[list[str], dict[str, str]]] = [
    (["data", "fashion-mnist", "--out", "TMP/d"], NO_DATA),
    (["data", "sample", "--img-size", "3", "--out", "TMP/d"], {}),
    (["data", "sample", "--seed", "99999999999999999999", "--out", "TMP/d"], {}),
    (["data", "sample", "--augment", "bogus", "--out", "TMP/d"], {}),
    (["train", "--data", "fashion-mnist", "--out", "TMP/t1"], NO_DATA),
    (["train", "--data", "mnist", "--out", "TMP/t2"], NO_DATA),
    (["train", "--data", "sample", "--out", "RUN"], {}),
    (["train", "--data", "sample", "--out", "RUN", "--resume", "--lr", "0.5"], {}),
    (["train", "--data", "sample", "--model", "mnist_cnn", "--img-size", "150", "--out", "TMP/t3"], {}),
    (["train", "--data", "sample", "--img-size", "4000", "--out", "TMP/t4"], {}),
    (["train", "--data", "sample", "--transfer", "features", "--out", "TMP/t5"], {}),
    (["train", "--data", "ucr:Nope", "--out", "TMP/t6"], {}),
    (["train", "--data", "ucr:GunPoint", "--augment", "standard", "--out", "TMP/t7"], {}),
    (["train", "--data", "ucr:GunPoint", "--model", "mnist_cnn", "--out", "TMP/t8"], {}),
    (["train", "--data", "sample", "--model", "fcn1d", "--out", "TMP/t9"], {}),
    (["export", "TMP"], {}),
    (["export", "RUN", "--out", "RUN/config.yaml"], {}),
    (["export", "RUN", "--format", "bogus"], {}),
    (["evaluate", "DAMAGED"], {}),
    (["evaluate", "RUN", "--data", "fashion-mnist"], NO_DATA),
    (["evaluate", "TMP"], {}),
    (["predict", "WEIGHTS", "IMG"], {}),
    (["predict", "RUN", "--model", "mnist_cnn", "IMG"], {}),
    (["predict", "RUN", "TMP/nosuch.png"], {}),
    (["predict", "RUN"], {}),
    (["explain", "WEIGHTS", "IMG", "--out", "TMP/e.png"], {}),
    (["explain", "RUN", "IMG", "--layer", "nosuch", "--out", "TMP/e.png"], {}),
    (["explain", "RUN", "IMG", "--target", "zzz", "--out", "TMP/e.png"], {}),
    (["explain", "RUN", "IMG", "--out", "RUN/curves.png"], {}),
    (["features", "RUN", "IMG", "IMG", "--out", "TMP/f.png"], {}),
    (["features", "WEIGHTS", "IMG", "--out", "TMP/f.png"], {}),
    (["dream", "RUN", "--layer", "nosuch", "--out", "TMP/d.png"], {}),
    (["dream", "RUN", "--layer", "auto", "--filters", "0-1000", "--out", "TMP/d.png"], {}),
    (["dream", "WEIGHTS", "--layer", "auto", "--out", "TMP/d.png"], {}),
    (["dream", "--model", "mnist_cnn", "--layer", "auto", "--size", "100000", "--out", "TMP/d.png"], {}),
    (["summary", "WEIGHTS"], {}),
    (["summary", "mnist_cnn", "--input", "1x10x10"], {}),
    (["summary", "conv1d:8:3", "--input", "1x28x28"], {}),
    (["summary", "cats_cnn", "--input", "3x100000x100000"], {}),
    (["summary", "mnist_cnn"], {"CNNLAB_MAX_MEMORY_GB": "nan"}),
    (["rf", "mnist_cnn", "--samples", "100000000", "--out", "TMP/rf.png"], {}),
    (["rf", "mnist_cnn", "--layer", "head.fc1", "--out", "TMP/rf.png"], {}),
    (["rf", "WEIGHTS", "--out", "TMP/rf.png"], {}),
    (["rf", "RUN", "--out", "RUN/run.json"], {}),
    (["arithmetic", "--n", "2", "--k", "5", "--out", "TMP/a.png"], {}),
    (["arithmetic", "mnist_cnn", "--n", "3", "--out", "TMP/a.png"], {}),
    (["arithmetic", "mnist_cnn", "--layer", "head.fc1", "--out", "TMP/a.png"], {}),
    (["arithmetic", "--n", "99999999999999999999", "--out", "TMP/a.png"], {}),
    (["probe", "RUN", "--map-points", "1", "--out", "TMP/p"], {}),
    (["probe", "RUN", "--data", "fashion-mnist", "--out", "TMP/p"], NO_DATA),
    (["invariance", "RUN", "--angles", "nan", "--out", "TMP/i.png"], {}),
    (["invariance", "RUN", "--max-shift", "100", "--out", "TMP/i.png"], {}),
    (["invariance", "RUN", "--out", "RUN/run.png"], {}),
    (["report", "RUN", "--out", "RUN/config.yaml"], {}),
    (["report", "TMP"], {}),
    (["report", "RUN", "RUN"], {}),
    (["serve", "RUN", "--max-upload-mb", "nan"], {}),
    (["serve", "RUN", "--port", "70000"], {}),
    (["filters", "IMG", "--bank", "gabor", "--thetas", "0,nan", "--out", "TMP/g.png"], {}),
    (["filters", "IMG", "--bank", "sobel", "--thetas", "4", "--out", "TMP/g.png"], {}),
    (["filters", "fashion-mnist", "--out", "TMP/g.png"], NO_DATA),
    (["filters", "IMG", "--out", "TMP/g.txt"], {}),
    (["filters", "sample", "--out", "TMP/g.png"], {"CNNLAB_MAX_FILTERS": "-1"}),
]


def _fill(items: list[str], files: dict[str, str]) -> list[str]:
    return [re.sub(r"^(RUN|IMG|WEIGHTS|TMP|NODATA|DAMAGED)", lambda m: files[m.group(1)], a) for a in items]


def test_every_command_is_walked() -> None:
    walked = {args[0] for args, _ in CASES}
    assert walked == set(GROUP.commands) - {"models", "demo"}  # models refuses nothing; demo runs the others


@pytest.mark.parametrize(("args", "env"), CASES, ids=[" ".join(a[:2] + a[-2:]) for a, _ in CASES])
def test_every_hint_names_options_of_its_command(args: list[str], env: dict[str, str], files) -> None:
    argv = _fill(args, files)
    line = refused(invoke(*argv, env={k: _fill([v], files)[0] for k, v in env.items()}))
    assert not foreign_flags(args[0], line), (foreign_flags(args[0], line), line)
