"""Damaged run folders: every file a run folder holds, damaged, ends in one line naming the file and key.

Before the run-folder schema (issue 12) these ended in a TypeError, a KeyError, a ValueError, or in
predictions of "nan%" (``std`` 0 in run.json). Each case damages one file of a copy of a finished run and
reads the folder back (``load_run``, the one reader of every command) or resumes it (the checkpoints).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from _trust import cnnlab, one_error_line

from cnnlab.errors import CnnlabError, TrainingError
from cnnlab.train import TrainConfig, fit, load_run
from cnnlab.train.callbacks import read_metrics


def _json_edit(change: Callable[[dict], object]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        doc = json.loads(data)
        result = change(doc)
        return json.dumps(doc if result is None else result).encode()

    return edit


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda doc: doc.__setitem__(key, value)


def _drop(key: str) -> Callable[[dict], None]:
    def drop(doc: dict) -> None:
        del doc[key]

    return drop


# (file, damage, what the one line must say)
LOAD_CASES = [
    ("classes.json", lambda b: b"", r"classes\.json is damaged, not JSON"),
    ("classes.json", lambda b: b'{"0": "cat"}', r"classes\.json must hold a non-empty list .* not dict"),
    ("classes.json", lambda b: b"[1, 2, 3]", r"classes\.json must hold class names .* not 1 \(int\)"),
    ("classes.json", lambda b: b"[]", r"classes\.json must hold a non-empty list"),
    ("classes.json", _json_edit(lambda d: d[:1] * 10), r"classes\.json names the class 'T-shirt/top' twice"),
    ("run.json", lambda b: b"[1]", r"run\.json must hold a mapping, not list"),
    ("run.json", _json_edit(_drop("mean")), r"run\.json: key 'mean' is missing"),
    ("run.json", _json_edit(_drop("image_size")), r"run\.json: key 'image_size' is missing"),
    ("run.json", _json_edit(_set("std", [0.0])), r"run\.json: key 'std' must be above 0"),
    ("run.json", _json_edit(_set("std", ["1"])), r"run\.json: key 'std' must be a list of 1 finite"),
    ("run.json", _json_edit(_set("mean", [0.0, 0.0, 0.0])), r"run\.json: key 'mean' must be a list of 1 "),
    ("run.json", _json_edit(_set("in_chans", "1")), r"run\.json: key 'in_chans' must be a whole number"),
    ("run.json", _json_edit(_set("image_size", [1, 28, 28, 1])), r"key 'image_size' must be \[C, H, W\]"),
    ("run.json", _json_edit(_set("image_size", [3, 28, 28])), r"key 'image_size' .* `in_chans` is 1"),
    ("run.json", _json_edit(_set("image_size", [1, 28])), r"'image_size' is \[1, 28\], but .* takes images"),
    ("run.json", _json_edit(_set("num_classes", 4)), r"key 'num_classes' is 4 but classes\.json names 10"),
    ("run.json", _json_edit(_set("num_classes", True)), r"key 'num_classes' must be a whole number"),
    ("run.json", _json_edit(_set("best_epoch", "two")), r"key 'best_epoch' must be a whole number"),
    ("config.yaml", lambda b: b"epochs: [unclosed", r"config\.yaml: cannot read the run config"),
    ("config.yaml", lambda b: b"- a\n- b\n", r"config\.yaml: not a cnnlab config"),
    ("config.yaml", lambda b: b.replace(b"model: mnist_cnn\n", b""), r"config\.yaml: key 'model' is missing"),
    ("config.yaml", lambda b: b.replace(b"epochs: 2", b"epochs: two"), r"key 'epochs' must be int"),
    ("config.yaml", lambda b: b.replace(b"epochs: 2", b"epochs: 0"), r"key 'epochs' must be at least 1"),
    ("config.yaml", lambda b: b.replace(b"transfer: scratch", b"transfer: 7"), r"key 'transfer' must be one"),
    ("config.yaml", lambda b: b + b"colour: red\n", r"config\.yaml: unknown option\(s\) colour"),
    ("model.safetensors", lambda b: b[:100], r"model\.safetensors: damaged, cannot be read"),
    ("model.safetensors", lambda b: b"", r"model\.safetensors: damaged, cannot be read"),
]


@pytest.mark.parametrize(("name", "damage", "says"), LOAD_CASES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(LOAD_CASES)])
def test_a_damaged_file_is_named_in_one_line(copy_run, name: str, damage, says: str) -> None:
    run = copy_run()
    path = run / name
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CnnlabError, match=says) as exc:
        load_run(run)
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    fixes = ("restore the file", "fix the file", "train the run again", "remove")
    assert any(fix in message for fix in fixes)


def test_nan_weights_in_model_safetensors_are_refused(copy_run) -> None:
    from safetensors.torch import load_file, save_file

    run = copy_run()
    state = load_file(str(run / "model.safetensors"))
    key = next(iter(state))
    state[key][0] = float("nan")
    save_file(state, str(run / "model.safetensors"), metadata={"model": "mnist_cnn", "num_classes": "10"})
    with pytest.raises(CnnlabError, match=rf"tensor '{key}' holds NaN"):
        load_run(run)


def test_std_zero_used_to_predict_nan_percent_now_refused_from_the_cli(copy_run) -> None:
    run = copy_run()
    info = json.loads((run / "run.json").read_text())
    info["std"] = [0.0]
    (run / "run.json").write_text(json.dumps(info))
    from cnnlab.data import load_data
    from cnnlab.images import save_image

    image = save_image(run.parent / "x.png", load_data("sample", limit=1).val.images[0])
    proc = cnnlab("predict", str(run), str(image), "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_error_line(proc.stderr)
    assert "run.json: key 'std' must be above 0" in line and "nan" not in line.lower().replace("nan or", "")


def test_metrics_csv_damage_is_named_with_line_and_column(copy_run) -> None:
    run = copy_run()
    rows = read_metrics(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    text = (run / "metrics.csv").read_text().splitlines()
    text[2] = text[2].replace(text[2].split(",")[3], "lots")
    (run / "metrics.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(CnnlabError, match=r"metrics\.csv: line 3, column 'val_loss' is 'lots', not a number"):
        read_metrics(run / "metrics.csv")
    (run / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(CnnlabError, match=r"metrics\.csv: column 'train_loss' is missing"):
        read_metrics(run / "metrics.csv")
    (run / "metrics.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CnnlabError, match=r"metrics\.csv: cannot be read"):
        read_metrics(run / "metrics.csv")
    load_run(run)  # the model does not need metrics.csv


def _resume(run: Path, **changes: object) -> TrainConfig:
    return TrainConfig.from_yaml(run / "config.yaml").replace(out=str(run), resume=True, **changes)


@pytest.mark.parametrize("name", ["last.ckpt", "best.ckpt"])
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda b: b[: len(b) // 2], "is damaged"),
        (lambda b: b"", "is damaged"),
        (lambda b: b"PK\x03\x04 not a zip", "is damaged"),
    ],
)
def test_a_damaged_checkpoint_stops_resume_before_any_work(copy_run, name: str, damage, says: str) -> None:
    run = copy_run()
    path = run / "checkpoints" / name
    path.write_bytes(damage(path.read_bytes()))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(TrainingError, match=rf"^resume: .*{name} {says}.*with `overwrite`") as exc:
        fit(_resume(run, epochs=3))
    assert exc.value.cli_message().startswith("--resume: ") and "\n" not in str(exc.value)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # nothing touched


def test_a_checkpoint_without_its_keys_is_named(copy_run) -> None:
    run = copy_run()
    path = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(path, weights_only=True)
    del ckpt["state_dict"]
    torch.save(ckpt, path)
    with pytest.raises(TrainingError, match=r"last\.ckpt: key 'state_dict' is missing"):
        fit(_resume(run, epochs=3))
    torch.save([1, 2], path)
    with pytest.raises(TrainingError, match=r"last\.ckpt is not a checkpoint \(holds list\)"):
        fit(_resume(run, epochs=3))


def test_evaluate_on_a_damaged_folder_is_one_line_exit_2(copy_run) -> None:
    run = copy_run()
    (run / "classes.json").write_text('"cat"')
    proc = cnnlab("evaluate", str(run), "--json")
    assert proc.returncode == 2
    assert "classes.json must hold a non-empty list of class names, not str" in one_error_line(proc.stderr)
