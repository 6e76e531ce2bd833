"""Numbers from users: NaN, infinities, negative limits, huge sizes and seeds, one line each and exit 2.

Issue 20 found NaN accepted then crashing (``serve --max-upload-mb nan``, ``CNNLAB_CACHE_MAX_GB=nan``,
``filters --thetas 0,nan``) or used (``filters --phases nan --json`` printed a bare ``NaN``, ``invariance
--angles nan`` gave an accuracy for the angle nan), negative limits read as "no limit", seeds that ``data``
took and ``train`` refused, and sizes that allocated before they were checked (``rf --samples 100000000``,
``arithmetic --n 100000000``, ``arithmetic --n 99999999999999999999``). Every float option and numeric
variable goes through :mod:`cnnlab.values`; every size a command allocates from is estimated first.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from _trust import invoke, refused
from typer.main import get_command

from cnnlab.cli import app

GROUP = get_command(app)


def float_options() -> list[tuple[str, str]]:
    """(command, flag) of every option typed ``float`` (read from the commands: nothing listed by hand)."""
    out = []
    for name, command in GROUP.commands.items():
        for param in command.params:
            hint = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            flags = [o for o in getattr(param, "opts", []) if o.startswith("--")]
            if hint is float and flags:
                out.append((name, flags[0]))
    return out


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnnlab.data import load_data
    from cnnlab.images import save_image

    folder = tmp_path_factory.mktemp("numbers")
    return save_image(folder / "x.png", load_data("sample", limit=1).val.images[0])


def _base(name: str, image: Path, tmp: Path) -> list[str]:
    """A quick, valid invocation of each command with a float option."""
    return {
        "data": ["data", "sample", "--out", str(tmp / "d")],
        "filters": ["filters", str(image), "--bank", "gabor", "--out", str(tmp / "g.png")],
        "dream": ["dream", "--model", "mnist_cnn", "--layer", "auto", "--steps", "1", "--out",
                  str(tmp / "d.png")],
        "serve": ["serve", "mnist_cnn", "--port", "0"],
        "train": ["train", "--data", "sample", "--limit", "8", "--epochs", "1", "--out", str(tmp / "t")],
    }[name]


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` returns instead of serving (were a value accepted, the test would not hang)."""
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)


def test_the_float_options_are_found() -> None:
    found = set(float_options())
    # train's --lr is text (a number or `find`): its NaN and infinities are in the list test below
    assert {("serve", "--max-upload-mb"), ("filters", "--gamma"), ("data", "--val-split"),
            ("dream", "--lr")} <= found


@pytest.mark.parametrize(("name", "flag"), float_options(), ids=lambda v: v)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_float_option_refuses_nan_and_infinities(name: str, flag: str, value: str, image: Path,
                                                       tmp_path: Path, no_serving: None) -> None:
    line = refused(invoke(*_base(name, image, tmp_path), flag, value))
    assert flag in line, line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["filters", "IMG", "--bank", "gabor", "--thetas", "0,nan"], "--thetas 0,nan: give one or more"),
        (["filters", "IMG", "--bank", "gabor", "--thetas", "inf"], "--thetas inf: give one or more finite"),
        (["filters", "IMG", "--bank", "gabor", "--phases", "nan", "--json"], "--phases nan: give one"),
        (["filters", "IMG", "--bank", "gabor", "--param", "phases=0,inf"], "--param phases=0,inf: give"),
        (["invariance", "RUN", "--angles", "nan", "--json"], "--angles 'nan': nan is not allowed"),
        (["invariance", "RUN", "--angles", "5,inf"], "--angles '5,inf': inf is not allowed"),
        (["invariance", "RUN", "--angles", "720"], "give a finite number from -360 to 360"),
        (["serve", "RUN", "--max-upload-mb", "nan"], "--max-upload-mb nan: give a finite number above 0"),
        (["serve", "RUN", "--max-upload-mb", "inf"], "--max-upload-mb inf: give a finite number above 0"),
        (["train", "--data", "sample", "--lr", "nan"], "--lr must be a positive number up to 1000"),
        (["train", "--data", "sample", "--lr", "inf"], "--lr must be a positive number up to 1000"),
        (["train", "--data", "sample", "--lr=-inf"], "--lr must be a positive number up to 1000"),
    ],
    ids=lambda v: " ".join(v[-3:]) if isinstance(v, list) else None,
)
def test_nan_in_number_lists_and_options_is_refused(args: list[str], says: str, image: Path, tiny_run: Path,
                                                    tmp_path: Path, no_serving: None) -> None:
    argv = [a.replace("IMG", str(image)).replace("RUN", str(tiny_run)) for a in args]
    if argv[0] in ("filters", "invariance"):
        argv += ["--out", str(tmp_path / "x.png")]
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "t")]
    result = invoke(*argv)
    assert says in refused(result)
    assert result.stdout == ""  # no bare NaN on stdout, no JSON at all


def test_the_library_refuses_the_same_values() -> None:
    from cnnlab.errors import ArgumentError
    from cnnlab.filters import make_bank
    from cnnlab.report.measures import angles as parse_angles
    from cnnlab.serve import create_app

    for call in (lambda: make_bank("gabor", phases=[float("nan")]),
                 lambda: make_bank("gabor", thetas=[0, 1e999]), lambda: parse_angles("nan"),
                 lambda: create_app("mnist_cnn", max_upload_mb=float("nan"))):
        with pytest.raises(ArgumentError):
            call()


def test_json_output_is_always_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnlab._cli._app import print_json

    print_json({"loss": float("nan"), "values": [1.0, float("inf")], "n": 1})
    assert json.loads(capsys.readouterr().out) == {"loss": None, "values": [1.0, None], "n": 1}


# ------------------------------------------------------------------ environment variables

ENV_CASES = [
    ("CNNLAB_MAX_MEMORY_GB", ["summary", "mnist_cnn"]),
    ("CNNLAB_CACHE_MAX_GB", ["data", "PHOTOS", "--out", "TMP/d"]),
    ("CNNLAB_MAX_IMAGE_PIXELS", ["data", "PHOTOS", "--out", "TMP/d"]),
    ("CNNLAB_MAX_FILTERS", ["filters", "IMG", "--bank", "gabor", "--out", "TMP/g.png"]),
]


@pytest.mark.parametrize(("variable", "args"), ENV_CASES, ids=[v for v, _ in ENV_CASES])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "lots", "1e999"])
def test_every_numeric_variable_refuses_nan_infinities_and_negative_limits(
    variable: str, args: list[str], value: str, image: Path, photo_folder: Path, tmp_path: Path
) -> None:
    argv = [a.replace("IMG", str(image)).replace("PHOTOS", str(photo_folder)).replace("TMP", str(tmp_path))
            for a in args]
    line = refused(invoke(*argv, env={variable: value, "CNNLAB_CACHE_DIR": str(tmp_path / "cache")}))
    assert line.startswith(f"error: {variable}={value!r}: give a"), line


def test_zero_is_no_limit_where_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnlab.data.cache import max_cache_bytes
    from cnnlab.images import max_image_pixels

    monkeypatch.setenv("CNNLAB_CACHE_MAX_GB", "0")
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "0")
    assert max_cache_bytes() is None and max_image_pixels() is None
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for variable in ("CNNLAB_CACHE_MAX_GB", "CNNLAB_MAX_IMAGE_PIXELS"):
        assert f"`{variable}` (0 = no limit" in readme, variable


# ------------------------------------------------------------------ the one seed rule


SEEDED = sorted(name for name, cmd in GROUP.commands.items() if any("--seed" in p.opts for p in cmd.params))


@pytest.mark.parametrize("seed", ["99999999999999999999", "4294967296", "-1"])
def test_one_seed_rule_for_every_command(seed: str, image: Path, tiny_run: Path, tmp_path: Path) -> None:
    assert SEEDED == ["data", "dream", "probe", "rf", "train"]
    bases = {
        "data": ["data", "sample", "--out", str(tmp_path / "d")],
        "dream": ["dream", str(tiny_run), "--layer", "auto", "--steps", "1", "--out",
                  str(tmp_path / "d.png")],
        "probe": ["probe", str(tiny_run), "--no-tsne", "--out", str(tmp_path / "p")],
        "rf": ["rf", "mnist_cnn", "--out", str(tmp_path / "rf.png")],
        "train": ["train", "--data", "sample", "--limit", "8", "--out", str(tmp_path / "t")],
    }
    lines = {name: refused(invoke(*bases[name], "--seed", seed)) for name in SEEDED}
    assert set(lines.values()) == {"error: --seed must be between 0 and 4294967295"}, lines


def test_the_largest_seed_is_taken(tmp_path: Path) -> None:
    result = invoke("data", "sample", "--seed", "4294967295", "--json", "--out", str(tmp_path))
    assert result.exit_code == 0, result.stderr[-2000:]


# ------------------------------------------------------------------ sizes: estimated before allocating


@pytest.mark.parametrize(
    "args",
    [
        ["rf", "mnist_cnn", "--samples", "100000000"],
        ["rf", "mnist_cnn", "--input", "1x30000x30000"],
        ["rf", "mnist_cnn", "--input", "3x100000x100000"],
        ["arithmetic", "mnist_cnn", "--input", "3x100000x100000"],
    ],
    ids=lambda v: " ".join(v),
)
def test_sizes_over_the_memory_budget_are_refused_at_once(args: list[str], tmp_path: Path) -> None:
    start = time.perf_counter()
    line = refused(invoke(*args, "--out", str(tmp_path / "x.png"), env={"CNNLAB_MAX_MEMORY_GB": "2"}))
    assert "over the memory budget of 2.0 GiB (CNNLAB_MAX_MEMORY_GB=2)" in line, line
    assert time.perf_counter() - start < 30  # it took 294 s and 14.4 GB to fail


def test_arithmetic_of_huge_numbers_allocates_nothing(tmp_path: Path) -> None:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = invoke("arithmetic", "--n", "100000000", "--k", "99999999", "--json", "--out",
                    str(tmp_path / "a.png"))
    assert result.exit_code == 0, (repr(result.exception), result.stderr[-2000:])
    doc = json.loads(result.stdout)
    assert doc["out"] == [2, 2] and doc["torch_out"] == [2, 2]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 500_000  # KiB: it asked for 40 PB
    line = refused(invoke("arithmetic", "--n", "99999999999999999999", "--out", str(tmp_path / "a.png")))
    assert line == "error: --n must be at most 2,147,483,647, got 99,999,999,999,999,999,999"
