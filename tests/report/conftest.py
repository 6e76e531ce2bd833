"""Two small trained runs on the embedded sample (no augmentation, and the standard augmentation)."""

from __future__ import annotations

from pathlib import Path

import pytest


def _train(out: Path, augment: str) -> Path:
    from cnnlab.train import TrainConfig, fit

    fit(
        TrainConfig(
            data="sample",
            model="mnist_cnn",
            limit=120,
            batch_size=32,
            epochs=2,
            augment=augment,
            progress=False,
            out=str(out),
        )
    )
    return out


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mnist_cnn trained 2 epochs on 120 sample images per split, no augmentation."""
    return _train(tmp_path_factory.mktemp("report-runs") / "plain", "none")


@pytest.fixture(scope="session")
def augmented_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same with ``augment="standard"``."""
    return _train(tmp_path_factory.mktemp("report-runs") / "augmented", "standard")
