"""Issue 22: every report figure is drawn for the width it is shown at (text >= 9 CSS px there), and a
report stays light (one self-contained file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from cnnlab.report.document import FIGURE_WIDTH, MIN_TEXT_PX, Picture, drawn_texts, figure_picture


@pytest.fixture(scope="module")
def written(run_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from cnnlab.report.assemble import make_report

    return make_report([run_dir], out=tmp_path_factory.mktemp("light") / "report.html")


def _displayed_text_px(fig: Figure, pic: Picture, dpi: float, displayed_width: float) -> float:
    """The smallest drawn text of ``fig``, in CSS px: pt * dpi/72 * displayed width / PNG width."""
    return min(float(t.get_fontsize()) * dpi / 72 * displayed_width / pic.width for t in drawn_texts(fig))


def test_figure_picture_raises_small_text_to_the_minimum_at_its_displayed_width() -> None:
    fig = Figure(figsize=(24, 3))  # a 24-inch strip: shown at FIGURE_WIDTH px, 41 dpi
    axes = fig.subplots(1, 16)
    for i, ax in enumerate(axes):
        ax.set_title(f"{i}", fontsize=7)  # 7 pt at 41 dpi would be 4 px tall on the page
    pic = figure_picture(fig, "strip")
    dpi = int(FIGURE_WIDTH / 24)  # as figure_picture picks it
    assert pic.width <= FIGURE_WIDTH * 1.05
    measured = _displayed_text_px(fig, pic, dpi, displayed_width=pic.width)
    assert measured >= MIN_TEXT_PX - 1e-6 and pic.min_text_px == pytest.approx(measured)


def test_every_report_figure_text_is_at_least_9_px_at_its_displayed_width(written) -> None:
    dest, report = written
    html = dest.read_text()
    figures = [p for p in report.pictures() if p.min_text_px is not None]
    assert len(figures) >= 5  # samples, curves, confusion, kernels, feature maps...
    small = [(p.alt, round(p.min_text_px, 2)) for p in figures if p.min_text_px < MIN_TEXT_PX - 1e-6]
    assert not small, small
    # the page shows each figure at its PNG width (one PNG px per CSS px), never wider than FIGURE_WIDTH
    shown = {alt: int(w) for alt, w in re.findall(r'<img src="data:[^"]+" alt="([^"]*)" width="(\d+)"', html)}
    for p in figures:
        assert shown[p.alt] == p.width and p.width <= FIGURE_WIDTH * 1.05, (p.alt, p.width)


def test_demo_sized_report_is_light(written) -> None:
    dest, _ = written
    size = dest.stat().st_size
    print(f"report of one mnist_cnn run: {size / 1e6:.2f} MB")
    assert size <= 2_000_000
    html = dest.read_text()
    assert not re.findall(r'\ssrc="(?!data:)', html)  # still self-contained: every image inline
    assert not re.findall(r'<link [^>]*href="(?!data:)', html) and "<script src" not in html


def test_a_comparison_links_each_run_page_and_shows_what_they_share_once(
    run_dir: Path, augmented_run: Path, tmp_path: Path
) -> None:
    from cnnlab.report.assemble import make_report

    dest, rep = make_report([run_dir, augmented_run], out=tmp_path / "compare.html")
    html = dest.read_text()
    links = re.findall(r'<p class="runpage"><a href="([^"]+)">', html)
    assert links == ["compare-1-plain.html", "compare-2-augmented.html"]
    for link, run in zip(links, rep.runs, strict=True):
        page = (tmp_path / link).read_text()
        assert run.path in page and "Inside the network" in page  # the run's full report
        assert [s.title for s in run.sections] == ["Verdict", "Run"]  # each run's own
    # both trained mnist_cnn on the same sample data: its model section is shared, the data section
    # is not (the augmented run adds an augmentation grid)
    assert "Model" in [s.title for s in rep.shared] and "Data" not in [s.title for s in rep.shared]
    assert html.count("<h3>Model</h3>") == 1
    single = sum((tmp_path / link).stat().st_size for link in links)
    print(f"comparison {dest.stat().st_size / 1e6:.2f} MB, the two run pages {single / 1e6:.2f} MB")
    assert dest.stat().st_size <= 3_000_000 and dest.stat().st_size < single / 2
