"""Helpers of the serve tests: photos, the chromium check, a live ``cnnlab serve`` subprocess.

The browser is Debian's chromium driven by PyPI playwright (no browser download). Where chromium or
playwright is missing the browser tests skip with a one-line reason, or fail when
``CNNLAB_REQUIRE_BROWSER=1``. (A minimal launcher of this package's own; the report tests have theirs.)
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def png_bytes(width: int, height: int, *, seed: int = 0) -> bytes:
    """A random RGB PNG."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def chromium() -> str:
    """The chromium executable; skip (or fail under ``CNNLAB_REQUIRE_BROWSER=1``) where it cannot run."""
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (pip install playwright; no browser download needed)"
    path = shutil.which("chromium")
    if path is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
    if reason is not None:
        if os.environ.get("CNNLAB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required (CNNLAB_REQUIRE_BROWSER=1) but {reason}")
        pytest.skip(f"browser test: {reason}")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cnnlab_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


@contextlib.contextmanager
def live_server(run: Path, *extra: str, timeout_s: float = 300) -> Iterator[tuple[str, Any]]:
    """``cnnlab serve RUN`` in a subprocess on a free port; yields its URL once /api/info answers."""
    import httpx

    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "serve", str(run), "--port", str(port), *extra],
                            env=cnnlab_env(), stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"cnnlab serve exited with {proc.returncode}: {log.read()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/api/info", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"cnnlab serve did not answer within {timeout_s} s"
            time.sleep(0.5)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
