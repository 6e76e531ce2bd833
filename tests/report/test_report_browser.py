"""The report in a real browser (Debian's chromium via playwright): one file, no other request, no error.

Skipped with a one-line reason where chromium or playwright is missing; `.ci/run` sets
``CNNLAB_REQUIRE_BROWSER=1``, which turns that skip into a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import open_page
from cnnlab.report.assemble import SECTION_TITLES, make_report

SIX = ["Verdict", "Run", "Data", "Model", "Training", "Evaluation", "Inside the network"]  # the verdict first


def _check_page(page, log, url: str, n_pictures: int, shot: Path) -> None:
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => ({ok: e.complete && e.naturalWidth > 0, alt: e.alt}))"
    )
    assert len(images) == n_pictures
    assert all(i["ok"] for i in images), [i["alt"] for i in images if not i["ok"]]
    page.click("figure.fig img")  # the page's script: a click enlarges a figure, Escape closes it
    assert page.eval_on_selector_all("figure.fig.zoom", "els => els.length") == 1
    page.keyboard.press("Escape")
    assert page.eval_on_selector_all("figure.fig.zoom", "els => els.length") == 0
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert log.errors == []
    assert log.requests == [url]  # the file itself, nothing else (data: URIs are no request)


def test_report_of_a_trained_run_in_the_browser(run_dir: Path, tmp_path: Path) -> None:
    path, report = make_report([run_dir], out=tmp_path / "report.html")
    url = path.resolve().as_uri()
    with open_page(url) as (page, log):
        headings = page.eval_on_selector_all("section.section > h3", "els => els.map(e => e.textContent)")
        assert headings == SIX == list(SECTION_TITLES)
        assert page.title() == f"cnnlab report: {run_dir}"
        _check_page(page, log, url, len(report.pictures()), tmp_path / "report.png")


def test_comparison_of_two_runs_in_the_browser(run_dir: Path, augmented_run: Path, tmp_path: Path) -> None:
    path, report = make_report([run_dir, augmented_run], out=tmp_path / "compare.html")
    url = path.resolve().as_uri()
    with open_page(url) as (page, log):
        runs = page.eval_on_selector_all("article.run > h2", "els => els.map(e => e.textContent)")
        assert runs == ["Shared by all runs", "plain", "augmented"]
        paths = page.eval_on_selector_all("article.run > p.path", "els => els.map(e => e.textContent)")
        assert paths == [str(run_dir.resolve()), str(augmented_run.resolve())]
        headings = page.eval_on_selector_all("section.section > h3", "els => els.map(e => e.textContent)")
        # what both runs share once, then each run's own verdict and header (and a link to its full page)
        shared = [sec.title for sec in report.shared]
        assert "Model" in shared and headings == shared + SIX[:2] + SIX[:2]
        pages = page.eval_on_selector_all("p.runpage > a", "els => els.map(e => e.getAttribute('href'))")
        assert pages == ["compare-1-plain.html", "compare-2-augmented.html"]
        rows = page.eval_on_selector_all(
            "#comparison tbody tr", "els => els.map(e => e.cells[0].textContent)"
        )
        assert rows == ["plain", "augmented"]
        legend = page.eval_on_selector_all("#comparison img", "els => els.map(e => e.alt)")
        assert legend == ["the learning curves of every run, overlaid"]
        # the comparison table fits the page: its box needs no horizontal scrolling
        box = page.eval_on_selector("#comparison .table", "e => [e.scrollWidth, e.clientWidth]")
        assert box[0] <= box[1], box
        _check_page(page, log, url, len(report.pictures()), tmp_path / "compare.png")


@pytest.mark.parametrize("name", ["report.html"])
def test_the_browser_helper_records_requests_and_errors(tmp_path: Path, name: str) -> None:
    """The helper itself: a page with a script error and a request to another file is caught."""
    (tmp_path / name).write_text(
        '<!DOCTYPE html><html><body><img src="other.png"><script>nope();</script></body></html>'
    )
    url = (tmp_path / name).resolve().as_uri()
    with open_page(url) as (_page, log):
        pass
    assert log.requests[0] == url and (tmp_path / "other.png").as_uri() in log.requests
    assert log.errors and any("nope" in e for e in log.errors)


def test_without_chromium_the_browser_tests_skip_or_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import browser

    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.delenv("CNNLAB_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        browser.chromium()
    monkeypatch.setenv("CNNLAB_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="CNNLAB_REQUIRE_BROWSER=1"):
        browser.chromium()
