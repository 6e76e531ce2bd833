"""Shared fixtures. Real data comes from CNNLAB_DATA_DIR (CI sets it to ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# The cores shared out: all to one process, or an equal part to each pytest-xdist worker (`make test`).
torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", default=False, help="rewrite golden files from current output"
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data folder; tests that need it skip (loudly) where it is absent."""
    value = os.environ.get("CNNLAB_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("CNNLAB_DATA_DIR is not set to the real-data folder (CI sets it)")
    return Path(value)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _output_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """What commands write without --out or a run folder ($CNNLAB_OUT_DIR) lands in a temporary folder."""
    if "CNNLAB_OUT_DIR" not in os.environ:
        os.environ["CNNLAB_OUT_DIR"] = str(tmp_path_factory.mktemp("cnnlab-out"))
