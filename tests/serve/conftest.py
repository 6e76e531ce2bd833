"""Fixtures of the serve tests: small runs, a TestClient, photos, a headless browser, a live server.

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


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run on the embedded sample (mnist_cnn_gap, 1 epoch on 100 images: a few seconds)."""
    from cnnlab.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("serve") / "run"
    fit(TrainConfig(data="sample", model="mnist_cnn_gap", epochs=1, limit=100, batch_size=32, progress=False,
                    out=str(out)))
    return out


@pytest.fixture(scope="session")
def sample_app(sample_run: Path) -> Any:
    from cnnlab.serve import create_app

    return create_app(sample_run)


@pytest.fixture
def client(sample_app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(sample_app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def photo() -> bytes:
    """A 120 x 90 photo-sized PNG."""
    return png_bytes(120, 90)


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


@pytest.fixture
def browser_page() -> Iterator[tuple[Any, list[str]]]:
    """A playwright page in headless chromium with a fresh profile, and the console errors it logs."""
    executable = chromium()
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cnnlab-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=executable, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 1000})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(120_000)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, errors
        finally:
            context.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cnnlab_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="session")
def cats_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run ``cnnlab train`` made on cats-vs-dogs: efficientnet_lite0, pretrained, features, 1 epoch."""
    out = tmp_path_factory.mktemp("cats") / "run"
    cmd = [sys.executable, "-m", "cnnlab", "train", "--data", str(data_dir / "cats-vs-dogs"),
           "--model", "efficientnet_lite0", "--pretrained", "--transfer", "features", "--epochs", "1",
           "--limit", "200", "--out", str(out), "--no-progress"]
    done = subprocess.run(cmd, env=cnnlab_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


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
