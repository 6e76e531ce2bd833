"""Acceptance: ``cnnlab serve`` (a subprocess) on a run cnnlab trained on cats-vs-dogs, driven in chromium.

Upload a validation photo through the page's file input -> the right class and a heatmap in the photo's
own frame; switching the method re-renders the heatmap; clicking a feature-map unit draws a box on the
photo whose size in input pixels is the summary's receptive field of that layer, clipped at the border.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from _serve_helpers import live_server

pytestmark = pytest.mark.slow


def _expected_box(layer: dict[str, Any], rf: tuple[int, int], jump: tuple[float, float], row: int, col: int,
                  size: int = 224) -> tuple[int, int]:
    """(rows, cols) of the unit's field clipped to the input, from the summary's field and jump."""
    top, left = round(layer["offset"][0] + row * jump[0]), round(layer["offset"][1] + col * jump[1])
    rows = min(top + rf[0] - 1, size - 1) - max(top, 0) + 1
    return rows, min(left + rf[1] - 1, size - 1) - max(left, 0) + 1


def _click_unit(page: Any, layer: str, row: int, col: int) -> dict[str, Any]:
    tile = page.locator(f'.tile img[data-layer="{layer}"]').first
    rows, cols = int(tile.get_attribute("data-rows")), int(tile.get_attribute("data-cols"))
    box = tile.bounding_box()
    tile.click(position={"x": (col + 0.5) / cols * box["width"], "y": (row + 0.5) / rows * box["height"]})
    page.wait_for_function(
        "([l, r, c]) => { const u = document.getElementById('unit-info').textContent;"
        " return u.includes(l + ',') && u.includes(`(row ${r}, col ${c})`)"
        " && !document.getElementById('rf-box').hasAttribute('hidden'); }", arg=[layer, row, col])
    return page.eval_on_selector("#rf-box", "b => { const r = b.getBoundingClientRect();"
                                 " return {...b.dataset, w: r.width, h: r.height}; }")


def test_upload_explain_switch_method_and_explore_a_unit(cats_run: Path, data_dir: Path, browser_page: Any,
                                                         tmp_path: Path) -> None:
    from PIL import Image, ImageOps

    from cnnlab.summary import summarize
    from cnnlab.train import load_run

    page, log = browser_page
    run = load_run(cats_run)
    summary = summarize(run.model, run.image_size)
    photo = sorted((data_dir / "cats-vs-dogs" / "val" / "dog").glob("*.jpg"))[0]
    with Image.open(photo) as im:
        width, height = ImageOps.exif_transpose(im).size
    with live_server(cats_run) as (url, _):
        info = httpx.get(f"{url}/api/info").json()
        assert info["classes"] == ["cat", "dog"]
        page.goto(f"{url}/")
        page.wait_for_function("() => document.getElementById('method').options.length > 0")
        page.set_input_files("#file", str(photo))
        page.wait_for_function("() => { const h = document.getElementById('heatmap');"
                               " return !h.hidden && h.complete && h.naturalWidth > 0; }")
        assert page.text_content("#top-class").split(" ")[0] == "dog"
        natural = page.eval_on_selector("#heatmap", "h => [h.naturalWidth, h.naturalHeight]")
        assert natural == [width, height]  # the photo's own size, not the 224 x 224 input
        size_js = "e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height]"
        shown, heat_box = page.eval_on_selector("#photo", size_js), page.eval_on_selector("#heatmap", size_js)
        assert heat_box == pytest.approx(shown, abs=0.5)  # drawn exactly over the photo
        first = page.get_attribute("#heatmap", "src")
        page.select_option("#method", "layercam")
        page.wait_for_function("() => document.getElementById('heatmap').dataset.method === 'layercam'")
        assert page.get_attribute("#heatmap", "src") != first
        assert page.eval_on_selector("#heatmap", "h => h.naturalWidth") == width

        layer = "features.blocks.2"
        rec = summary.layer(layer)
        assert rec.field is not None and rec.field.jump is not None
        meta = next(item for item in info["layers"] if item["name"] == layer)
        page.wait_for_selector(f'.tile img[data-layer="{layer}"]')
        for row, col in ((14, 14), (0, 5)):  # one unit inside, one whose field passes the top border
            got = _click_unit(page, layer, row, col)
            rows, cols = _expected_box(meta, rec.field.rf, rec.field.jump, row, col)
            assert (int(got["fieldRows"]), int(got["fieldCols"])) == rec.field.rf
            assert (int(got["rows"]), int(got["cols"])) == (rows, cols)
            # on screen: input pixels x (photo shown / photo) x (photo / input), per axis
            assert got["w"] == pytest.approx(cols * shown[0] / 224, abs=1.0)
            assert got["h"] == pytest.approx(rows * shown[1] / 224, abs=1.0)
            if row == 14:
                assert (rows, cols) == rec.field.rf  # not clipped
            else:
                assert rows < rec.field.rf[0] and cols == rec.field.rf[1]
        assert page.locator("#unit-info .tile img").count() == 6
        page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
    assert log.errors == []
