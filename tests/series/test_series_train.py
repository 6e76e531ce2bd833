"""Acceptance: ``cnnlab train --data ucr:GunPoint --model fcn1d`` with the series defaults reaches >= 97% on
the archive's TEST split (Fawaz et al. 2019 report 100.0% for the FCN; ItalyPowerDemand's >= 95% is measured
by benchmarks/series.py, to keep the suite short).

The accuracy asserted is the LAST epoch's: nothing is chosen on the test split (the exported best-loss
checkpoint is, so ``evaluate`` is checked to agree with it but not used for the threshold).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.train import TrainConfig, fit, load_run
from cnnlab.train.evaluate import evaluate, load_eval_data


@pytest.mark.slow
@pytest.mark.parametrize(("name", "least"), [("GunPoint", 0.97)])
def test_fcn1d_with_the_series_defaults_reaches_the_published_level(
    tmp_path: Path, name: str, least: float
) -> None:
    cfg = TrainConfig(data=f"ucr:{name}", out=str(tmp_path / name), progress=False)
    assert (cfg.model, cfg.epochs, cfg.batch_size, cfg.schedule.value) == ("fcn1d", 150, 16, "cosine")
    result = fit(cfg)
    last = result.metrics[-1]["val_acc"]
    assert last >= least, f"{name}: last-epoch test accuracy {last:.3f} < {least}"
    run = load_run(result.run_dir)
    ev = evaluate(run, load_eval_data(run)[0])
    best = next(r for r in result.metrics if r["epoch"] == result.best_epoch)
    assert ev.accuracy == pytest.approx(best["val_acc"], abs=1e-6)  # evaluate reads the exported best epoch
