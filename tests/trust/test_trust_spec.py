"""A layer spec string is a model source like a registry name: checked when it is named, before slow work.

``cnnlab summary 'conv:x:y relu'`` and ``cnnlab train --model conv:0:3`` used to end in a torch traceback
(a ``TypeError`` from ``nn.Conv2d``, or a first training step on a layer with no filters); now the spec is
parsed and its values checked when the registry resolves it: one line naming the token and how to write
it, exit status 2, and nothing decoded or written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _trust import cnnlab, one_error_line

from cnnlab.errors import ModelError


def test_summary_of_a_malformed_spec_names_the_token_and_the_fix() -> None:
    r = cnnlab("summary", "conv:x:y relu")
    assert r.returncode == 2, r.stderr[-2000:]
    line = one_error_line(r.stderr)
    assert "'conv:x:y'" in line and "out must be a whole number of at least 1, got 'x'" in line
    assert "write it as conv:OUT:KERNEL" in line and "e.g. conv:32:3" in line
    assert r.stdout == ""


def test_train_with_a_zero_filter_conv_stops_before_the_data_is_decoded(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "run"
    r = cnnlab("train", "--data", "sample", "--model", "conv:0:3", "--out", str(out),
               env={"CNNLAB_CACHE_DIR": str(cache)})
    assert r.returncode == 2, r.stderr[-2000:]
    line = one_error_line(r.stderr)
    assert "'conv:0:3'" in line and "got 0" in line and "e.g. conv:32:3" in line
    assert not any(cache.rglob("*")) and not (out / "config.yaml").exists()  # nothing decoded or written


def test_fit_checks_the_spec_before_it_loads_any_data(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import cnnlab.train.run as run
    from cnnlab.train import TrainConfig, fit

    def no_data(*_a: object, **_k: object) -> None:
        raise AssertionError("the data was loaded before the spec was checked")

    monkeypatch.setattr(run, "load_training_data", no_data)
    with pytest.raises(ModelError, match=r"spec layer 'dropout:1.5': p must be a number in \[0, 1\)"):
        fit(TrainConfig(data="sample", model="conv:8:3 relu dropout:1.5", out=str(tmp_path / "r")))


@pytest.mark.parametrize(("spec", "says"), [
    ("conv:8:3:stride=0", "stride must be a whole number of at least 1, got 0"),
    ("conv:8:3:padding=-1", "padding must be a whole number of at least 0 or same/valid, got -1"),
    ("maxpool:0", "kernel must be a whole number of at least 1, got 0"),
    ("res:two", "out must be a whole number of at least 1, got 'two'"),
])
def test_every_layer_value_is_checked_when_parsed(spec: str, says: str) -> None:
    from cnnlab.models.spec import parse_spec

    with pytest.raises(ModelError, match=says):
        parse_spec(spec)


def test_a_spec_has_one_default_input_and_class_count() -> None:
    from cnnlab.models import create_model, model_info
    from cnnlab.models.spec import SPEC_INPUT_SIZE, SPEC_NUM_CLASSES
    from cnnlab.source import resolve_model

    spec = "conv:8:3 relu maxpool:2"
    info = model_info(spec)
    assert (tuple(info["input_size"]), info["num_classes"]) == (SPEC_INPUT_SIZE, SPEC_NUM_CLASSES)
    src = resolve_model(spec)
    assert src.image_size == SPEC_INPUT_SIZE and src.num_classes == SPEC_NUM_CLASSES
    assert src.weights == "random"
    grey = resolve_model(spec, input_size=(1, 28, 28), num_classes=3)  # the channels it is given
    assert grey.image_size == (1, 28, 28) and grey.num_classes == 3
    assert create_model(spec, in_chans=1).features[0][0].in_channels == 1
