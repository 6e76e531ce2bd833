"""Shared fixtures of the trust tests: one small finished run, a small photo folder, the CLI runners."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _trust import TINY


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch run folder (do not modify: copy it with :func:`copy_run`)."""
    from cnnlab.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("trust") / "tiny"
    fit(TrainConfig(out=str(out), **TINY))  # type: ignore[arg-type]
    return out


@pytest.fixture
def copy_run(tiny_run: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh copy of :func:`tiny_run` to damage."""

    def make(name: str = "copy") -> Path:
        dest = tmp_path / name
        shutil.copytree(tiny_run, dest)
        return dest

    return make


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two class folders of 12 small RGB photos each (random colours on a gradient: no real data needed)."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("photos") / "pets"
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(12):
            base = np.linspace(0, 255, 48 * 40, dtype=np.float64).reshape(40, 48, 1)
            img = (base * (0.5 + 0.5 * c) + rng.integers(0, 60, (40, 48, 3))).clip(0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{name}{i:02d}.png")
    return root
