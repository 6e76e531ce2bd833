"""A headless browser for tests: Debian's chromium driven by PyPI playwright (no browser download).

``with open_page(url) as (page, log):`` launches chromium with a fresh profile, records every request the
page makes and every console error or uncaught exception, opens ``url`` and waits for the ``load`` event.
Where chromium or playwright is missing the test is skipped with a one-line reason, or fails when
``CNNLAB_REQUIRE_BROWSER=1`` (CI sets it: there the browser tests must run).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

#: chromium flags: headless, no sandbox (containers), and none of its own network traffic.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass
class PageLog:
    """What a page did: the URL of every request, console errors, uncaught exceptions."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Console errors and uncaught exceptions together."""
        return self.console_errors + self.page_errors


def chromium() -> str:
    """The chromium executable; skip (or fail under ``CNNLAB_REQUIRE_BROWSER=1``) where it cannot run."""
    reason = None
    path = shutil.which("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (pip install playwright; no browser download needed)"
    if path is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
    if reason is not None:
        if os.environ.get("CNNLAB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required (CNNLAB_REQUIRE_BROWSER=1) but {reason}")
        pytest.skip(f"browser test: {reason}")
    return str(path)


@contextlib.contextmanager
def open_page(
    url: str, *, viewport: tuple[int, int] = (1280, 900), timeout_s: float = 60
) -> Iterator[tuple[Any, PageLog]]:
    """Open ``url`` in headless chromium; yield the playwright page and the :class:`PageLog` of it.

    Args:
        url: What to open (``file://...`` or ``http://127.0.0.1:PORT/...``).
        viewport: Window size in CSS pixels.
        timeout_s: Limit of every page operation.
    """
    executable = chromium()
    from playwright.sync_api import sync_playwright

    log = PageLog()
    with tempfile.TemporaryDirectory(prefix="cnnlab-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            args=list(CHROMIUM_ARGS),
            headless=True,
            viewport={"width": viewport[0], "height": viewport[1]},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(timeout_s * 1000)
            page.on("request", lambda req: log.requests.append(req.url))
            page.on(
                "console", lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None
            )
            page.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
            page.goto(url, wait_until="load")
            yield page, log
        finally:
            context.close()
