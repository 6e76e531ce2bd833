"""Fixtures of the serve tests: small runs, a TestClient, a photo, a headless browser page, a cats run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _serve_helpers import cnnlab_env, png_bytes

from browser import open_page


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


@pytest.fixture
def browser_page() -> Iterator[tuple[Any, Any]]:
    """A playwright page in headless chromium (``tests/browser.py``) and the :class:`PageLog` of it."""
    with open_page("about:blank", viewport=(1280, 1000), timeout_s=120) as (page, log):
        yield page, log


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
