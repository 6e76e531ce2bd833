"""One class-target parser for both skins: ``cnnlab explain --target`` and the page's target field.

The same out-of-range or unknown target gets the same message from the CLI (one line, exit 2, the option
as its flag) and from the API (400, the option as the library names it): both call
:func:`cnnlab.interpret.targets.parse_target`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cnnlab.cli import app


@pytest.mark.parametrize("target", ["10", "-1", "zebra"])
def test_the_cli_and_the_page_refuse_a_bad_target_with_the_same_message(
    sample_run: Path, client: Any, photo: bytes, tmp_path: Path, target: str
) -> None:
    image = tmp_path / "p.png"
    image.write_bytes(photo)
    result = CliRunner().invoke(app, ["explain", str(sample_run), str(image), "--target", target,
                                      "--out", str(tmp_path / "cam.png")])
    assert result.exit_code == 2, result.output
    cli_line = [line for line in result.output.splitlines() if line.startswith("error:")]
    r = client.post("/api/explain", files={"file": ("p.png", photo, "image/png")}, data={"target": target})
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith("target ") and ("use 0..9" in detail or "not a class name or index" in detail)
    assert cli_line == [f"error: --{detail}"]  # the same words; the CLI names its flag
    assert not (tmp_path / "cam.png").exists()


def test_a_class_name_is_its_index_in_both(sample_run: Path, client: Any, photo: bytes,
                                           tmp_path: Path) -> None:
    import json

    image = tmp_path / "p.png"
    image.write_bytes(photo)
    classes = client.get("/api/info").json()["classes"]
    files = {"file": ("p.png", photo, "image/png")}
    api = client.post("/api/explain", files=files, data={"target": classes[3]})
    result = CliRunner().invoke(app, ["explain", str(sample_run), str(image), "--target", classes[3],
                                      "--json", "--out", str(tmp_path / "cam.png")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert api.json()["target"] == doc["images"][0]["target"] == 3
