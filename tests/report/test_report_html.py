"""The page: one file, nothing loaded from anywhere else, every run-controlled text escaped."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import torch

from cnnlab.report.document import (
    Code,
    Facts,
    Gallery,
    Missing,
    Picture,
    Report,
    RunReport,
    Section,
    Table,
    Text,
    Tile,
    image_picture,
)
from cnnlab.report.html import CSP, render_html

EVIL = '<script>alert("x")</script><img src="http://example.com/x.png">'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def _evil_report() -> Report:
    pic = image_picture(torch.zeros(1, 28, 28, dtype=torch.uint8), EVIL)
    blocks = [
        Facts(((EVIL, EVIL),)),
        Text(EVIL),
        Code(EVIL, label=EVIL),
        Missing(EVIL),
        Table((EVIL, "n"), ((EVIL, 3),), caption=EVIL),
        Gallery((Tile((pic,), (EVIL,), title=EVIL),), EVIL),
        Picture(pic.png, EVIL, pic.width, pic.height, caption=EVIL),
    ]
    run = RunReport(EVIL, EVIL, [Section("data", EVIL, blocks)])
    return Report(
        EVIL, "2024-01-01 00:00:00", EVIL, {EVIL: EVIL}, [run], Section("comparison", EVIL, [Text(EVIL)])
    )


def test_every_text_from_a_run_is_escaped() -> None:
    html = render_html(_evil_report())
    assert "<script>alert" not in html and '<img src="http' not in html
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 15
    tags = _tags(html)
    assert [t for t, _ in tags].count("script") == 1  # the page's own script only
    assert [t for t, _ in tags].count("img") == 2  # the gallery tile and the picture; none injected


def test_nothing_but_data_uris_and_anchors_is_referenced() -> None:
    html = render_html(_evil_report())
    for tag, attrs in _tags(html):
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith(("data:", "#")), (tag, name, value)
    csp = [a for t, a in _tags(html) if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0]["content"] == CSP and "default-src 'none'" in CSP


def test_a_small_image_is_enlarged_without_smoothing_and_a_large_one_downscaled() -> None:
    from PIL import Image

    small = image_picture(torch.zeros(1, 28, 28, dtype=torch.uint8), "digit")
    assert small.pixelated and (small.width, small.height) == (28, 28)
    big = image_picture(torch.randint(0, 255, (3, 300, 150), dtype=torch.uint8), "photo")
    assert not big.pixelated and (big.width, big.height) == (80, 160)
    with Image.open(io.BytesIO(big.png)) as im:
        assert im.size == (80, 160) and im.mode == "RGB"
    html = render_html(Report("t", "now", "", {}, [RunReport("r", "r", [Section("s", "S", [small])])]))
    (img,) = [a for t, a in _tags(html) if t == "img"]
    assert img["class"] == "pixelated" and img["width"] == "112" and img["height"] == "112"
