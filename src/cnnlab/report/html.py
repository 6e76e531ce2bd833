"""Render a :class:`~cnnlab.report.document.Report` as ONE self-contained HTML page.

CSS and JavaScript are inline, every picture is a ``data:image/png`` URI, and a Content-Security-Policy
forbids the page any other request (no font, script, style or image from a host or another file). Every
text that comes from a run (names, paths, class names, file names) is HTML-escaped; the page skeleton is a
:class:`string.Template` (values are inserted once, never re-read as template text).
"""

from __future__ import annotations

import base64
import math
import re
from html import escape
from string import Template
from typing import Any

from .document import Block, Code, Facts, Gallery, Missing, Picture, Report, Section, Table, Text, Tile

__all__ = ["CSP", "render_html"]

#: The page may load nothing but its own inline styles, scripts and data: images.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
#: Pixelated thumbnails are shown at least this wide (CSS pixels).
PIXELATED_WIDTH = 96

_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?( ?%| s| M)?$")

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="$csp">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>$title</title>
<style>$css</style>
</head>
<body>
<header class="page">
<h1>$title</h1>
<p class="meta">Made $created with <code>$command</code>. One file: every figure is inside it.
Click a figure to enlarge it.</p>
<nav>$nav</nav>
</header>
<main>
$body
</main>
<footer>$versions</footer>
<script>$js</script>
</body>
</html>
""")

_CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dde5; --band: #f4f6f9; --accent: #2457a6;
  --warn: #9a3b00; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); }
header.page { padding: 1rem 2rem; background: var(--band); border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 .3rem; font-size: 1.5rem; }
.meta { margin: 0 0 .5rem; color: var(--muted); }
nav ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
nav .runlink { font-weight: 600; }
main { padding: 0 2rem 2rem; max-width: 1400px; }
article.run { margin-top: 1.5rem; }
article.run > h2, section.comparison > h2 { font-size: 1.3rem; border-bottom: 2px solid var(--ink);
  padding-bottom: .2rem; word-break: break-all; }
section.section { margin: 1.2rem 0 2rem; }
section.section > h3 { font-size: 1.15rem; margin: 0 0 .6rem; color: var(--accent); }
p.path { color: var(--muted); margin-top: -.6rem; word-break: break-all; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0 1rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-word; }
.cmd { margin: .5rem 0 1rem; }
.cmd .label { color: var(--muted); font-size: .85rem; }
pre { background: #0f1720; color: #e8edf5; padding: .6rem .8rem; border-radius: 4px; overflow-x: auto;
  white-space: pre-wrap; word-break: break-all; user-select: all; margin: .2rem 0 0; }
.table { margin: .5rem 0 1rem; overflow-x: auto; }
.table.scroll { max-height: 32rem; overflow-y: auto; border: 1px solid var(--line); }
table { border-collapse: collapse; font-size: .9rem; }
caption { text-align: left; color: var(--muted); padding: .2rem 0; caption-side: bottom; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--band); position: sticky; top: 0; white-space: normal; vertical-align: bottom; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: .5rem 0 1.2rem; }
figure.fig img { max-width: 100%; height: auto; cursor: zoom-in; border: 1px solid var(--line); }
figure.fig.zoom { position: fixed; inset: 0; z-index: 10; margin: 0; background: #fff; overflow: auto;
  padding: 1rem; }
figure.fig.zoom img { max-width: none; cursor: zoom-out; }
figcaption, p.caption { color: var(--muted); font-size: .9rem; }
img.pixelated { image-rendering: pixelated; }
.gallery { display: flex; flex-wrap: wrap; gap: .6rem; margin: .5rem 0; }
.tile { border: 1px solid var(--line); border-radius: 4px; padding: .3rem; font-size: .8rem;
  max-width: 340px; }
.tile.wrong { border-color: #c0392b; box-shadow: inset 3px 0 0 #c0392b; }
.tile .pics { display: flex; gap: .25rem; }
.tile .lines span { display: block; word-break: break-all; }
.tile .lines span:first-child { font-weight: 600; }
p.missing { color: var(--warn); background: #fff4ec; border-left: 3px solid var(--warn);
  padding: .3rem .6rem; }
footer { padding: 1rem 2rem; color: var(--muted); font-size: .85rem; border-top: 1px solid var(--line); }
"""

_JS = """
document.addEventListener("click", function (event) {
  var img = event.target;
  if (img.tagName !== "IMG") { return; }
  var fig = img.closest("figure.fig");
  if (fig) { fig.classList.toggle("zoom"); }
});
document.addEventListener("keydown", function (event) {
  if (event.key !== "Escape") { return; }
  document.querySelectorAll("figure.fig.zoom").forEach(function (f) { f.classList.remove("zoom"); });
});
"""


def _e(text: Any) -> str:
    return escape(str(text), quote=True)


def _img(p: Picture) -> str:
    src = "data:image/png;base64," + base64.b64encode(p.png).decode("ascii")
    width, height, cls = p.width, p.height, ""
    if p.pixelated:
        scale = max(1, math.ceil(PIXELATED_WIDTH / max(1, p.width)))
        width, height, cls = p.width * scale, p.height * scale, ' class="pixelated"'
    return f'<img src="{src}" alt="{_e(p.alt)}" width="{width}" height="{height}"{cls}>'


def _picture(p: Picture) -> str:
    caption = f"<figcaption>{_e(p.caption)}</figcaption>" if p.caption else ""
    return f'<figure class="fig">{_img(p)}{caption}</figure>'


def _tile(t: Tile) -> str:
    pics = "".join(_img(p) for p in t.pictures)
    lines = "".join(f"<span>{_e(line)}</span>" for line in t.lines)
    title = f' title="{_e(t.title)}"' if t.title else ""
    cls = "tile wrong" if t.wrong else "tile"
    return f'<div class="{cls}"{title}><div class="pics">{pics}</div><div class="lines">{lines}</div></div>'


def _is_number(cell: Any) -> bool:
    if isinstance(cell, bool):
        return False
    return isinstance(cell, int | float) or bool(_NUMBER.match(str(cell)))


def _table(t: Table) -> str:
    numeric = [
        bool(t.rows) and all(_is_number(r[j]) or str(r[j]) == "--" for r in t.rows)
        for j in range(len(t.columns))
    ]
    head = "".join(
        f"<th{' class=num' if n else ''}>{_e(c)}</th>" for c, n in zip(t.columns, numeric, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if n else ''}>{_e(c)}</td>" for c, n in zip(row, numeric, strict=True))
        + "</tr>"
        for row in t.rows
    )
    caption = f"<caption>{_e(t.caption)}</caption>" if t.caption else ""
    cls = "table scroll" if t.scroll else "table"
    table = f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="{cls}">{table}</div>'


def render_block(block: Block) -> str:
    """One block as HTML (every text escaped)."""
    if isinstance(block, Picture):
        return _picture(block)
    if isinstance(block, Gallery):
        caption = f'<p class="caption">{_e(block.caption)}</p>' if block.caption else ""
        return f'{caption}<div class="gallery">{"".join(_tile(t) for t in block.tiles)}</div>'
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Facts):
        items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in block.items)
        return f'<dl class="facts">{items}</dl>'
    if isinstance(block, Code):
        label = f'<div class="label">{_e(block.label)}</div>' if block.label else ""
        return f'<div class="cmd">{label}<pre><code>{_e(block.text)}</code></pre></div>'
    if isinstance(block, Missing):
        return f'<p class="missing">Not shown: {_e(block.reason)}</p>'
    if isinstance(block, Text):
        return f"<p>{_e(block.text)}</p>"
    raise TypeError(f"not a report block: {type(block).__name__}")


def _section(sec: Section, anchor: str, level: int) -> str:
    body = "\n".join(render_block(b) for b in sec.blocks)
    heading = f"<h{level}>{_e(sec.title)}</h{level}>"
    return f'<section class="section {_e(sec.key)}" id="{anchor}">{heading}\n{body}\n</section>'


def _nav(report: Report) -> str:
    items = ['<li><a class="runlink" href="#comparison">Comparison</a></li>'] if report.comparison else []
    for k, run in enumerate(report.runs):
        links = " · ".join(f'<a href="#run-{k}-{_e(s.key)}">{_e(s.title)}</a>' for s in run.sections)
        items.append(f'<li><a class="runlink" href="#run-{k}">{_e(run.name)}</a>: {links}</li>')
    return f"<ul>{''.join(items)}</ul>"


def render_html(report: Report) -> str:
    """The whole page: one HTML document with everything inline.

    Args:
        report: From :func:`cnnlab.report.assemble.build_report`.

    Returns:
        The HTML text (UTF-8).
    """
    parts = []
    if report.comparison is not None:
        parts.append(_section(report.comparison, "comparison", 2))
    for k, run in enumerate(report.runs):
        sections = "\n".join(_section(s, f"run-{k}-{_e(s.key)}", 3) for s in run.sections)
        parts.append(
            f'<article class="run" id="run-{k}"><h2>{_e(run.name)}</h2>'
            f'<p class="path">{_e(run.path)}</p>\n{sections}\n</article>'
        )
    versions = "Versions: " + ", ".join(f"{_e(k)} {_e(v)}" for k, v in report.versions.items())
    return _PAGE.substitute(
        csp=CSP,
        title=_e(report.title),
        created=_e(report.created),
        command=_e(report.command or "cnnlab report"),
        nav=_nav(report),
        body="\n".join(parts),
        versions=versions,
        css=_CSS,
        js=_JS,
    )
