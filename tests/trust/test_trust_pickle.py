"""No pickle is ever run: a planted pickle that would create a marker file, in each place cnnlab reads.

Acceptance 5 of issue 12. Every file cnnlab reads from a run folder (checkpoints, ``model.safetensors``),
the caches (decoded images, embeddings) and ``--weights`` is replaced by a pickle whose loading calls
``open(marker, "w")``. cnnlab refuses or rebuilds each one; the marker never appears.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from _trust import TINY, cnnlab, one_error_line

from cnnlab.errors import CnnlabError


class Plant:
    """Unpickling this creates ``marker`` (what any code in a pickle could do instead)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "PWNED"
    with open(path, "w"):
        pass
    path.unlink()
    yield path
    assert not path.exists(), "a planted pickle was loaded"


def _torch_plant(path: Path, marker: Path, *, like_checkpoint: bool = True) -> None:
    obj: object = {"state_dict": {"w": Plant(marker)}, "epoch": 0, "global_step": 1} if like_checkpoint else (
        Plant(marker))
    torch.save(obj, path)


def test_the_plant_is_live(tmp_path: Path) -> None:
    """Sanity: loading the plant without ``weights_only`` does create the marker."""
    marker = tmp_path / "live"
    _torch_plant(tmp_path / "p.pt", marker)
    torch.load(tmp_path / "p.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()
    pickle.loads(pickle.dumps(Plant(marker)))
    assert marker.exists()


@pytest.mark.parametrize("name", ["last.ckpt", "best.ckpt"])
def test_checkpoints_of_a_run_folder(copy_run, marker: Path, name: str) -> None:
    run = copy_run()
    _torch_plant(run / "checkpoints" / name, marker)
    proc = cnnlab("train", *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k != "progress"],
                  "--epochs", "3", "--no-progress", "--out", str(run), "--resume")
    assert proc.returncode == 2
    assert f"{name} is damaged" in one_error_line(proc.stderr)


@pytest.mark.parametrize("pickled", ["plant", "plain pickle"])
def test_model_safetensors_of_a_run_folder(copy_run, marker: Path, pickled: str) -> None:
    run = copy_run()
    path = run / "model.safetensors"
    if pickled == "plant":
        _torch_plant(path, marker, like_checkpoint=False)
    else:
        path.write_bytes(pickle.dumps(Plant(marker)))
    from cnnlab.train import load_run

    with pytest.raises(CnnlabError, match=r"model\.safetensors: damaged"):
        load_run(run)
    proc = cnnlab("summary", str(path))  # the file as a model source of its own
    assert proc.returncode == 2 and "error:" in one_error_line(proc.stderr)


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt", ".bin"])
def test_weights_files(tmp_path: Path, marker: Path, suffix: str) -> None:
    weights = tmp_path / f"evil{suffix}"
    _torch_plant(weights, marker)
    proc = cnnlab("train", "--data", "sample", "--model", "mnist_cnn", "--weights", str(weights), "--limit",
                  "8", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    says = f"--weights {weights}: cannot read it as a state dict (UnpicklingError: Weights only load failed"
    assert says in line
    from cnnlab.source import resolve_model

    with pytest.raises(CnnlabError, match="cannot read it as a state dict"):
        resolve_model("mnist_cnn", weights=weights)
    weights.with_suffix(".pickle").write_bytes(pickle.dumps(Plant(marker)))  # not even torch's format
    with pytest.raises(CnnlabError, match="cannot read it as a state dict"):
        resolve_model("mnist_cnn", weights=weights.with_suffix(".pickle"))


def test_decode_cache_entry(photo_folder: Path, tmp_path: Path, marker: Path) -> None:
    from cnnlab.data import load_data

    cache = tmp_path / "cache"
    first = load_data(str(photo_folder), cache_dir=cache, img_size=32).train.images.clone()  # off the mmap
    entries = sorted(cache.glob("decoded-*.npy"))
    assert entries  # one per split
    for entry in entries:  # a new file in its place (the old one may still be mapped)
        planted = entry.with_name("planted.npy")
        np.save(planted, np.array([Plant(marker)], dtype=object), allow_pickle=True)
        planted.replace(entry)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = load_data(str(photo_folder), cache_dir=cache, img_size=32)
    assert any("is damaged" in str(w.message) for w in caught)
    assert torch.equal(again.train.images, first)  # rebuilt from the photos


def test_embedding_cache_entry(tmp_path: Path, marker: Path) -> None:
    from cnnlab.data import load_data
    from cnnlab.models import create_model
    from cnnlab.transfer.embeddings import compute_embeddings

    model = create_model("mnist_cnn").eval()
    data = load_data("sample", limit=16).val
    first = compute_embeddings(model, data, batch_size=8, cache_dir=tmp_path, mean=(0.0,), std=(1.0,))
    assert first.path is not None and not first.cache_hit
    _torch_plant(first.path, marker, like_checkpoint=False)
    again = compute_embeddings(model, data, batch_size=8, cache_dir=tmp_path, mean=(0.0,), std=(1.0,))
    assert not again.cache_hit and torch.equal(again.features, first.features)  # recomputed, not trusted
