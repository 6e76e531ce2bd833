"""The rich notebook views of the results: ``_repr_html_`` parses and says what the result holds, every
``_repr_png_`` is a real PNG of a sensible size, and :mod:`cnnlab.report` exposes its figure functions."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from html.parser import HTMLParser

import pytest
import torch
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"br", "hr", "img", "meta", "input", "col", "wbr"}


class _Tree(HTMLParser):
    """Checks that every tag is closed in order, and records tables as rows of (tag, text, attrs) cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tables: list[dict[str, list[list[tuple[str, str, dict[str, str]]]]]] = []
        self.section = "tbody"
        self.cell: list[str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self.tables.append({"thead": [], "tbody": [], "tfoot": []})
        elif tag in ("thead", "tbody", "tfoot"):
            self.section = tag
        elif tag == "tr":
            self.tables[-1][self.section].append([])
        elif tag in ("td", "th"):
            self.cell = []
            self.tables[-1][self.section][-1].append((tag, "", {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag in ("td", "th") and self.cell is not None:
            row = self.tables[-1][self.section][-1]
            kind, _, attrs = row[-1]
            row[-1] = (kind, "".join(self.cell).strip(), attrs)
            self.cell = None
        if tag in ("thead", "tfoot"):
            self.section = "tbody"

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def parse(html: str) -> _Tree:
    tree = _Tree()
    tree.feed(html)
    tree.close()
    assert not tree.stack, f"unclosed tags: {tree.stack}"
    return tree


def _png_size(data: bytes) -> tuple[int, int]:
    assert isinstance(data, bytes) and data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as img:
        img.load()  # decodes every pixel: a truncated file fails here
        assert img.format == "PNG"
        return img.size


def _sensible(size: tuple[int, int]) -> None:
    w, h = size
    assert 150 <= w <= 3000 and 100 <= h <= 3000, size


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    from cnnlab.models import create_model

    torch.manual_seed(0)
    return create_model("mnist_cnn").eval()


def test_summary_html_has_the_rows_of_the_table_and_the_totals(net: torch.nn.Module) -> None:
    from cnnlab.summary import summarize, summary_table
    from cnnlab.summary.records import COLUMNS, summary_rows, summary_totals

    s = summarize(net, (1, 28, 28), model_name="mnist_cnn")
    tree = parse(s._repr_html_())
    (table,) = tree.tables
    assert [c[1] for c in table["thead"][0]] == [name for name, _ in COLUMNS]
    rows = list(summary_rows(s))
    assert len(table["tbody"]) == len(rows) == len([r for r in s.layers if r.depth > 0])
    conv3 = next(cells for (rec, _), cells in zip(rows, table["tbody"], strict=True)
                 if rec.name == "features.block3.conv")
    macs = f"{s.layer('features.block3.conv').mult_adds:,}"
    assert [c[1] for c in conv3] == ["conv", "Conv2d", "64x3x3", "36,928", "--", macs, "18", "4"]
    assert conv3[0][2]["title"] == "features.block3.conv"  # the full name, on hover
    assert table["tfoot"][0][0][1] == summary_totals(s)
    assert "93,322" in summary_totals(s) and "2.82M" in summary_totals(s)
    # Nested rows are indented by depth.
    pads = {rec.depth: float(cells[0][2]["style"].split("padding-left:")[1].split("em")[0])
            for (rec, _), cells in zip(rows, table["tbody"], strict=True)}
    assert sorted(pads) == [1, 2, 3] and pads[1] < pads[2] < pads[3]
    # The terminal's rich table shows the same cells (the layer cell indented with spaces there).
    rich = summary_table(s)
    for j, column in enumerate(rich.columns):
        shown = [str(c).strip() for c in column._cells]
        assert shown == [row[j][1] for row in table["tbody"]]


def test_summary_html_escapes_every_text() -> None:
    from cnnlab.summary import summarize

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    s = summarize(net, (1, 8, 8), model_name="<script>alert('x')</script> & co")
    html = s._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; co" in html
    assert "<script>alert('x')</script> & co" in "".join(parse(html).text)


def _eval_result(classes: list[str]) -> object:
    from cnnlab.train.evaluate import EvalResult

    k = len(classes)
    confusion = [[(5 if i == j else 1) for j in range(k)] for i in range(k)]
    per_class = {c: {"precision": 5 / (5 + k - 1), "recall": 5 / (5 + k - 1), "f1": 5 / (5 + k - 1),
                     "support": 5 + k - 1} for c in classes}
    return EvalResult(accuracy=5 / (5 + k - 1), loss=0.123456, per_class=per_class, confusion=confusion,
                      top_losses=[], classes=classes)


def test_evaluation_html_tabulates_metrics_and_confusion() -> None:
    classes = ["T-shirt/top", "a<b", "c & d"]
    result = _eval_result(classes)
    html = result._repr_html_()  # type: ignore[attr-defined]
    assert "a<b" not in html and "a&lt;b" in html and "c &amp; d" in html
    tree = parse(html)
    text = "".join(tree.text)
    assert "71.4%" in text and "0.1235" in text and "21 images" in text  # 15/21 correct of 21
    per_class, confusion = tree.tables
    assert [c[1] for c in per_class["thead"][0]] == ["class", "precision", "recall", "F1", "support"]
    assert [[c[1] for c in row] for row in per_class["tbody"]] == [
        [name, "0.714", "0.714", "0.714", "7"] for name in classes]
    assert [c[1] for c in confusion["thead"][0]] == ["true \\ predicted", *classes]
    assert [[c[1] for c in row] for row in confusion["tbody"]] == [
        [classes[i], *[str(v) for v in row]] for i, row in enumerate(result.confusion)]  # type: ignore[attr-defined]


def test_evaluation_html_summarises_a_confusion_matrix_too_large_to_read() -> None:
    from cnnlab.report.notebook import MAX_CONFUSION_CLASSES

    result = _eval_result([f"c{i}" for i in range(MAX_CONFUSION_CLASSES + 1)])
    tree = parse(result._repr_html_())  # type: ignore[attr-defined]
    assert len(tree.tables) == 1 and len(tree.tables[0]["tbody"]) == MAX_CONFUSION_CLASSES + 1
    assert "too many to tabulate" in "".join(tree.text)


def test_cam_result_png_is_the_maps_with_class_and_score(net: torch.nn.Module) -> None:
    from cnnlab.interpret import explain
    from cnnlab.report import cam_maps_figure

    x = torch.rand(5, 1, 28, 28)
    res = explain(net, x, target=[0, 1, 2, 3, 4])
    _sensible(_png_size(res._repr_png_()))
    maps = torch.rand(5, 28, 28)
    maps[3] = 0.0  # the weighted channels summed to nothing positive here
    res = dataclasses.replace(res, maps=maps)
    names = [f"class-{i}" for i in range(10)]
    fig = cam_maps_figure(res, class_names=names, cols=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    flat = ["", "", "", " (map 0: no positive evidence)", ""]
    assert titles == [f"class-{i}\nscore {float(res.scores[i]):.3g}{flat[i]}" for i in range(5)]
    for ax, m in zip(fig.axes, res.maps, strict=False):  # the maps themselves, on one [0, 1] scale
        (image,) = ax.get_images()
        assert torch.equal(torch.as_tensor(image.get_array()), m.float()) and image.get_clim() == (0.0, 1.0)
    assert "gradcam maps of layer features.block3.relu" in fig.get_suptitle()
    assert "random" not in fig.get_suptitle()  # a CamResult cannot know how its weights were made
    assert "first 2 of 5" in cam_maps_figure(res, max_images=2).get_suptitle()



def test_feature_maps_and_filter_vis_png(net: torch.nn.Module) -> None:
    from cnnlab.interpret import feature_maps, visualize_filters

    fm = feature_maps(net, torch.rand(1, 28, 28))
    _sensible(_png_size(fm._repr_png_()))
    vis = visualize_filters(net, "Conv2d:0", filters=[0, 1, 2], steps=2)
    _sensible(_png_size(vis._repr_png_()))


def test_figure_png_of_a_report_figure() -> None:
    from cnnlab.report import curves_figure, figure_png

    rows = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5, "val_loss": 1.1 / e, "val_acc": 0.4}
            for e in (1, 2, 3)]
    fig = curves_figure(rows, num_classes=10)
    small, large = _png_size(figure_png(fig, dpi=50)), _png_size(figure_png(fig, dpi=100))
    _sensible(large)
    assert 1.8 < large[0] / small[0] < 2.2 and 1.8 < large[1] / small[1] < 2.2  # dpi scales the picture


def test_report_exports_documented_figure_functions_lazily() -> None:
    import inspect

    import cnnlab.report as report

    doc = report.__doc__ or ""
    for name in report.__all__:
        fn = getattr(report, name)
        assert callable(fn), name
        assert f":func:`{name}`" in doc, f"{name} is not listed in cnnlab.report's docstring"
        text = inspect.getdoc(fn) or ""
        assert "Args:" in text and "Returns:" in text, f"{name} lacks a Google-style docstring"
    assert set(report.__all__) <= set(dir(report))
    code = "import sys, cnnlab.report; print(sorted({'torch', 'matplotlib'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_report_model_table_shows_the_cells_of_the_summary(net: torch.nn.Module) -> None:
    from cnnlab.report.sec_model import INDENT, layer_row
    from cnnlab.summary import summarize
    from cnnlab.summary.records import summary_rows

    rows = list(summary_rows(summarize(net, (1, 28, 28), model_name="mnist_cnn")))
    assert rows
    for rec, cells in rows:
        assert layer_row(rec) == (INDENT * (rec.depth - 1) + rec.name, *cells[1:])
