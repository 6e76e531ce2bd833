"""Errors speak library terms, the CLI prints flags, and every unknown name gets a suggestion."""

from __future__ import annotations

import pytest

from cnnlab.errors import ArgumentError, CnnlabError, ModelError, as_flag, did_you_mean


def test_library_text_names_the_parameter_and_the_cli_the_flag() -> None:
    exc = ArgumentError("must be at least 1", param="epochs")
    assert str(exc) == "epochs must be at least 1" and isinstance(exc, ValueError)
    assert exc.cli_message() == "--epochs must be at least 1"
    text = ": diverged; lower `lr` or use `schedule` onecycle, see `cnnlab models`"
    ref = CnnlabError(text, param="fine_tune_epochs")
    assert str(ref).startswith("fine_tune_epochs: diverged; lower `lr`")
    assert ref.cli_message() == ("--fine-tune-schedule: diverged; lower --lr or use --schedule onecycle, "
                                 "see `cnnlab models`")
    assert as_flag("input_size") == "--input" and as_flag("data_dir") == "--data-dir"
    assert not isinstance(ModelError("x"), ValueError)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: __import__("cnnlab.models", fromlist=["create_model"]).create_model("resnet_18"),
         "did you mean resnet18"),
        (lambda: __import__("cnnlab.filters", fromlist=["make_bank"]).make_bank("gabr"),
         "did you mean gabor"),
        (lambda: __import__("cnnlab.data.transforms", fromlist=["get_preset"]).get_preset("standart"),
         "did you mean standard"),
        (lambda: __import__("cnnlab.data", fromlist=["load_data"]).load_data("fashion-mnst"),
         "did you mean fashion-mnist"),
        (lambda: __import__("cnnlab.train", fromlist=["TrainConfig"]).TrainConfig(optimizer="adamm"),
         "did you mean adam"),
    ],
    ids=["model", "bank", "augment", "data", "optimizer"],
)
def test_every_unknown_name_suggests_the_close_ones(call, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        call()


def test_did_you_mean_is_empty_when_nothing_is_close() -> None:
    assert did_you_mean("zzzz", ["adam", "sgd"]) == ""
    assert did_you_mean("sdg", ["adam", "sgd"]) == "did you mean sgd? "
