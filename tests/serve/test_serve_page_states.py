"""Issue 22, the page in chromium: it never shows a stale answer, opens the chooser from the keyboard and
fits a 390 px phone. ``cnnlab serve`` (a subprocess) on the tiny sample run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _serve_helpers import live_server, png_bytes

pytestmark = pytest.mark.slow

ANSWERED = "() => document.getElementById('top-class').textContent.includes('·')"


def _open(page: Any, url: str) -> None:
    page.goto(f"{url}/")
    page.wait_for_function("() => document.getElementById('method').options.length > 0")


def test_a_failed_upload_after_a_good_one_shows_no_old_answer(sample_run: Path, browser_page: Any,
                                                              tmp_path: Path) -> None:
    page, log = browser_page
    good, bad, tiny = tmp_path / "good.png", tmp_path / "bad.jpg", tmp_path / "tiny.png"
    good.write_bytes(png_bytes(120, 90))
    bad.write_text("this is a text file, renamed .jpg\n" * 20)
    tiny.write_bytes(png_bytes(1, 1))
    with live_server(sample_run) as (url, _):
        _open(page, url)
        page.set_input_files("#file", str(good))
        page.wait_for_function(ANSWERED)
        old = page.text_content("#top-class")
        assert old and page.locator("#bars li").count() == 5
        page.set_input_files("#file", str(bad))
        page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
        answer = page.text_content("#answer")
        assert page.text_content("#top-class") == ""  # no "class · p%" of the previous photo
        assert page.locator("#bars li").count() == 0 and old not in answer
        assert "image" in page.text_content("#status").lower()  # the error itself, in its place
        assert page.eval_on_selector("#heatmap", "h => h.hidden")
        # a photo below the model's 28 x 28 input is answered with a notice
        page.set_input_files("#file", str(tiny))
        page.wait_for_function(ANSWERED)
        assert "smaller than the model's 28×28 input" in page.text_content("#photo-notice")
    assert log.page_errors == []


def test_keyboard_opens_the_chooser_and_example_photos_answer(sample_run: Path, browser_page: Any) -> None:
    page, log = browser_page
    with live_server(sample_run) as (url, _):
        _open(page, url)
        page.keyboard.press("Tab")  # the drop zone is the first stop of the page
        assert page.evaluate("() => document.activeElement.id") == "drop"
        outline = page.eval_on_selector("#drop", "d => getComputedStyle(d).outlineStyle")
        assert outline not in ("none", "")  # a visible focus
        with page.expect_file_chooser() as chooser:
            page.keyboard.press("Enter")
        assert chooser.value is not None
        page.wait_for_selector("#examples .example img")
        page.locator("#examples .example").first.click()
        page.wait_for_function(ANSWERED)
        # switching the explorer's layer clears the unit's box and its details
        page.wait_for_selector(".tile img[data-layer]")
        page.locator(".tile img[data-layer]").first.click()
        page.wait_for_function("() => !document.getElementById('rf-box').hasAttribute('hidden')")
        layer = page.eval_on_selector("#fm-layer", "s => s.options[1].value")
        page.select_option("#fm-layer", layer)
        assert page.eval_on_selector("#rf-box", "b => b.hasAttribute('hidden')")
        assert page.eval_on_selector("#unit-info", "u => u.hidden")
        page.wait_for_function("() => document.querySelectorAll('#strips .strip').length === 1")
        heading = page.text_content("#strips .strip h3")
        assert "channels" in heading  # "all 16 channels" or "64 of 80 channels, strongest first"
    assert log.page_errors == []


def test_a_390_px_phone_has_no_horizontal_scroll_and_the_columns_stack(sample_run: Path, browser_page: Any,
                                                                        tmp_path: Path) -> None:
    page, log = browser_page
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes(640, 480))
    page.set_viewport_size({"width": 390, "height": 844})
    with live_server(sample_run) as (url, _):
        _open(page, url)
        page.set_input_files("#file", str(good))
        page.wait_for_function(ANSWERED)
        page.wait_for_selector(".tile img[data-layer]")
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], widths
        photo_box = page.locator("#input").bounding_box()
        answer_box = page.locator("#answer").bounding_box()
        assert answer_box["y"] >= photo_box["y"] + photo_box["height"] - 1  # stacked, not side by side
    assert log.page_errors == []
