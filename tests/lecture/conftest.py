"""Sample runs for the lecture measurements, trained once per session and only when a test asks for one.

Fixed seeds: ``mnist_cnn`` trained 2 epochs (lr 5e-3) on the embedded sample for the probe (a network
that has learned something to probe), and the 1-epoch ``mnist_mlp`` / ``mnist_cnn_gap`` runs the
invariance acceptance names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

RECIPES = {
    "mnist_cnn": {"epochs": 2, "lr": 5e-3},
    "mnist_mlp": {"epochs": 1},
    "mnist_cnn_gap": {"epochs": 1},
}


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``sample_run(model)`` -> the folder of that model's sample run (trained on first use)."""
    from cnnlab.train import TrainConfig, fit

    root = tmp_path_factory.mktemp("lecture-runs")
    done: dict[str, Path] = {}

    def get(model: str) -> Path:
        if model not in done:
            out = root / model
            recipe = RECIPES[model]
            cfg = TrainConfig(data="sample", model=model, seed=0, out=str(out), progress=False, **recipe)
            fit(cfg)
            done[model] = out
        return done[model]

    return get
