"""``cnnlab summary RUN`` of a ``partial`` run shows the run's own trainable/frozen split.

At issue 12 it printed trainable 3,373,570 / frozen 0 for an ``efficientnet_lite0`` partial run on two
classes: the model was rebuilt without the run's freezing. ``load_run`` now rebuilds it with
``build_model``, as training did; the split is the one training printed (1,020,162 / 2,353,408, the
numbers of BENCHMARKS.md's transfer table).
"""

from __future__ import annotations

import json
from pathlib import Path

from _trust import cnnlab

from cnnlab.train import TrainConfig, fit


def test_summary_of_a_partial_run_has_its_trainable_and_frozen_split(
    photo_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "partial"
    result = fit(TrainConfig(data=str(photo_folder), model="efficientnet_lite0", pretrained=True,
                             transfer="partial", img_size=64, limit=8, epochs=1, batch_size=8, progress=False,
                             out=str(out)))
    assert (result.params["trainable"], result.params["frozen"]) == (1_020_162, 2_353_408)
    proc = cnnlab("summary", str(out), "--json", env={"CNNLAB_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert (doc["trainable_params"], doc["frozen_params"]) == (1_020_162, 2_353_408)
    assert doc["total_params"] == 3_373_570 and doc["input_size"] == [3, 64, 64]
    text = cnnlab("summary", str(out)).stdout
    assert "trainable 1,020,162" in text and "frozen 2,353,408" in text
