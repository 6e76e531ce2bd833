"""TrainConfig round trip and validation; the learning-curve helpers."""

from __future__ import annotations

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.report.plots import confusion_figure, curves_figure, overfitting_onset
from cnnlab.train.config import Optimizer, Schedule, TrainConfig, Transfer


def test_yaml_round_trip_keeps_every_option(tmp_path):
    cfg = TrainConfig(
        data="fashion-mnist",
        model="cats_cnn",
        out=str(tmp_path / "run"),
        epochs=3,
        lr=0.01,
        optimizer="sgd",
        schedule="onecycle",
        transfer="partial",
        unfreeze_layers=("features.layer4", "features.layer3"),
        limit=128,
        devices="auto",
    )
    path = tmp_path / "config.yaml"
    path.write_text(cfg.to_yaml())
    back = TrainConfig.from_yaml(path)
    assert back == cfg
    assert back.optimizer is Optimizer.SGD and back.schedule is Schedule.ONECYCLE
    assert back.transfer is Transfer.PARTIAL
    assert back.unfreeze_layers == ("features.layer4", "features.layer3")


@pytest.mark.parametrize(
    ("changes", "param", "flag"),
    [
        ({"optimizer": "rmsprop"}, "optimizer", "--optimizer"),
        ({"epochs": 0}, "epochs", "--epochs"),
        ({"val_split": 1.0}, "val_split", "--val-split"),
        ({"devices": "many"}, "devices", "--devices"),
        ({"devices": 0}, "devices", "--devices"),
        ({"img_size": 0}, "img_size", "--img-size"),
        ({"epochs": 2, "fine_tune_epochs": 2}, "fine_tune_epochs", "--fine-tune-schedule"),
    ],
)
def test_bad_options_name_the_option(changes, param, flag):
    """The library names the field, the CLI the flag; a bad value is a ValueError too."""
    with pytest.raises(ValueError, match=f"^{param}") as exc:
        TrainConfig(**changes)
    assert isinstance(exc.value, CnnlabError) and exc.value.param == param
    assert exc.value.cli_message().startswith(flag)


def test_unknown_key_in_config_yaml_is_rejected(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model: mnist_cnn\nlearning_rate: 0.1\n")
    with pytest.raises(CnnlabError, match="learning_rate"):
        TrainConfig.from_yaml(path)


def test_weights_file_implies_pretrained():
    assert TrainConfig(weights="w.pth").pretrained is True


def test_overfitting_onset_is_the_minimum_followed_by_consistent_rise():
    train = [1.0, 0.7, 0.5, 0.4, 0.3, 0.2]
    assert overfitting_onset([1.0, 0.8, 0.7, 0.75, 0.8, 0.9], train) == 2
    # still improving, a single bump, or a minimum too close to the end: no onset
    assert overfitting_onset([1.0, 0.8, 0.7, 0.69, 0.68, 0.6], train) is None
    assert overfitting_onset([1.0, 0.8, 0.7, 0.72, 0.69, 0.65], train) is None
    assert overfitting_onset([1.0, 0.8, 0.7, 0.6, 0.5, 0.55], train) is None
    # validation and training loss both rising is divergence, not overfitting
    assert overfitting_onset([1.0, 0.8, 0.9, 1.0], [1.0, 0.8, 0.9, 1.0]) is None


def test_overfitting_onset_ignores_a_flat_noisy_tail_and_finds_a_noisy_turn():
    # the tail of a real augmented cats run: flat within the ~2% noise of a 200-image split
    flat = [0.70, 0.65, 0.60, 0.58, 0.561, 0.563, 0.569, 0.580, 0.564, 0.562, 0.580]
    falling = [1.0 - 0.05 * i for i in range(len(flat))]
    assert overfitting_onset(flat, falling) is None
    # a turn at epoch index 20 under +-0.02 alternating noise, 40 epochs
    noise = [0.02 if i % 2 else -0.02 for i in range(40)]
    val = [0.7 - 0.01 * i + n if i <= 20 else 0.5 + 0.01 * (i - 20) + n for i, n in enumerate(noise)]
    onset = overfitting_onset(val, [1.0 / (i + 1) for i in range(40)])
    assert onset is not None and abs(onset - 20) <= 2, onset


def _rows(val):
    return [
        {
            "epoch": i + 1,
            "train_loss": 1.0 / (i + 1),
            "train_acc": 0.5 + 0.05 * i,
            "val_loss": v,
            "val_acc": 0.6,
        }
        for i, v in enumerate(val)
    ]


def test_curves_figure_marks_overfitting_onset_only_when_present():
    fig = curves_figure(_rows([1.0, 0.8, 0.7, 0.75, 0.8, 0.9]))
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 3 and len(acc_ax.lines) == 3  # train, val, onset marker
    assert list(loss_ax.lines[2].get_xdata()) == [3, 3]  # epoch 3 (1-based) is the minimum
    fig = curves_figure(_rows([1.0, 0.8, 0.7]))
    assert len(fig.axes[0].lines) == 2


def test_confusion_figure_labels_and_counts():
    fig = confusion_figure([[5, 1], [2, 7]], ["cat", "dog"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "5", "7"]
