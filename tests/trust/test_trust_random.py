"""Nothing random is presented as learned.

At issue 12, ``--transfer features|partial`` without pretrained weights froze a random backbone (val acc
0.333, silently), and ``explain``/``features``/``dream``/``predict`` on a model with random weights drew
figures and printed JSON that looked like those of a trained network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _trust import cnnlab, one_error_line
from typer.testing import CliRunner

from cnnlab.errors import ArgumentError
from cnnlab.train import TrainConfig, fit


@pytest.mark.parametrize("mode", ["features", "partial"])
def test_freezing_a_random_backbone_is_refused_with_the_fix(mode: str, tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match=rf"^transfer {mode} freezes the backbone") as exc:
        fit(TrainConfig(data="sample", model="mnist_cnn", transfer=mode, limit=8, out=str(tmp_path / "r")))
    assert "add --pretrained (or --weights FILE), or use --transfer scratch" in exc.value.cli_message()
    proc = cnnlab("train", "--data", "sample", "--transfer", mode, "--out", str(tmp_path / "cli"))
    assert proc.returncode == 2
    assert one_error_line(proc.stderr).startswith(f"error: --transfer {mode} freezes")
    assert not (tmp_path / "cli" / "config.yaml").exists()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    from cnnlab.data import load_data
    from cnnlab.images import save_image

    return save_image(tmp_path / "shirt.png", load_data("sample", limit=1).val.images[0])


@pytest.fixture
def saved_titles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The title of every figure the commands save (they save through cnnlab._io.save_figure)."""
    import cnnlab._io as io

    titles: list[str] = []
    real = io.save_figure

    def spy(dest: Any, fig: Any, **kw: Any) -> Any:
        titles.append(" ".join(fig.get_suptitle().split()))
        return real(dest, fig, **kw)

    monkeypatch.setattr(io, "save_figure", spy)
    return titles


def _invoke(args: list[str]) -> Any:
    from cnnlab.cli import app

    return CliRunner().invoke(app, args, catch_exceptions=False)


COMMANDS = [
    ("explain", lambda img, out: ["explain", "--model", "mnist_cnn", str(img), "--channels", "2",
                                  "--faithfulness", "--out", str(out / "e.png"), "--json"], 3),
    ("features", lambda img, out: ["features", "--model", "mnist_cnn", str(img), "--out", str(out / "f.png"),
                                   "--json"], 1),
    ("features-channel", lambda img, out: ["features", "--model", "mnist_cnn", str(img), "--channel", "1",
                                           "--out", str(out / "g.png"), "--json"], 1),
    ("dream", lambda img, out: ["dream", "--model", "mnist_cnn", "--layer", "auto", "--filters", "0-1",
                                "--steps", "2", "--out", str(out / "d.png"), "--json"], 1),
]


@pytest.mark.parametrize(("name", "args", "figures"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_random_weights_are_said_in_the_warning_every_title_and_the_json(
    name: str, args: Any, figures: int, image: Path, tmp_path: Path, saved_titles: list[str]
) -> None:
    result = _invoke(args(image, tmp_path))
    assert result.exit_code == 0, result.output
    assert "warning: mnist_cnn has random weights: nothing it shows was learned" in " ".join(
        result.stderr.split())
    doc = json.loads(result.stdout)
    assert doc["weights"] == "random"
    assert len(saved_titles) == figures, saved_titles
    assert all("random weights" in t.lower() for t in saved_titles), saved_titles


def test_predict_json_says_random_weights(image: Path) -> None:
    result = _invoke(["predict", "--model", "mnist_cnn", str(image), "--json"])
    assert result.exit_code == 0, result.output
    assert "has random weights" in result.stderr
    assert [p["weights"] for p in json.loads(result.stdout)] == ["random"]


def test_a_run_is_trained_and_says_nothing(tiny_run: Path, image: Path, tmp_path: Path,
                                           saved_titles: list[str]) -> None:
    result = _invoke(["explain", str(tiny_run), str(image), "--out", str(tmp_path / "e.png"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["weights"] == "trained" and "random" not in result.stderr
    assert saved_titles and not any("random" in t for t in saved_titles)
    pred = _invoke(["predict", str(tiny_run), str(image), "--json"])
    assert [p["weights"] for p in json.loads(pred.stdout)] == ["trained"]


def test_pretrained_weights_are_pretrained() -> None:
    from cnnlab.source import resolve_model

    src = resolve_model("efficientnet_lite0")
    assert src.weights == "pretrained" and src.learned and src.random_note == ""
    assert resolve_model("efficientnet_lite0", pretrained=False).weights == "random"
    assert resolve_model("conv:8:3 relu", input_size=(1, 16, 16)).weights == "random"
