"""`predict` through the decode cache: the same top-k, the same skipped files, as decoding each file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnlab.data.transforms import Preprocess
from cnnlab.errors import DataError
from cnnlab.train.evaluate import CACHE_MIN_FILES, predict


@dataclass
class _Run:
    """The :class:`~cnnlab.train.evaluate.Classifier` a run folder gives, with a tiny seeded network."""

    model: nn.Module
    classes: list[str]
    preprocess: Preprocess
    binary: bool = False


@pytest.fixture
def run() -> _Run:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    return _Run(net, ["a", "b", "c", "d"], Preprocess((3, 24, 20), (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _photos(folder: Path, n: int) -> list[Path]:
    """``n`` seeded photos of assorted sizes (JPEG and PNG), larger and smaller than the model's input."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        h, w = int(rng.integers(12, 90)), int(rng.integers(12, 90))
        arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        p = folder / f"{i:02d}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def _broken(folder: Path, good: Path) -> list[Path]:
    data = good.read_bytes()
    (folder / "03b-cut.png").write_bytes(data[: len(data) // 2])
    (folder / "07b-empty.jpg").write_bytes(b"")
    (folder / "11b-text.jpg").write_text("not a photo")
    return [folder / "03b-cut.png", folder / "07b-empty.jpg", folder / "11b-text.jpg"]


def _as_lists(preds: list) -> list[tuple[str, list[tuple[str, float]]]]:
    return [(p.path, p.top_k) for p in preds]


def test_same_top_k_and_skipped_files_with_and_without_the_cache(
    run: _Run, cache: Path, tmp_path: Path
) -> None:
    good = _photos(tmp_path / "f", 20)
    _broken(tmp_path / "f", good[0])
    files = sorted((tmp_path / "f").iterdir())
    skipped_direct: list[tuple[str, str]] = []
    direct = predict(run, files, top_k=3, batch_size=8, skipped=skipped_direct, use_cache=False)
    assert not cache.exists()  # use_cache=False writes nothing
    for attempt in ("cold", "warm"):  # the first call writes the cache entry, the second reads it back
        skipped: list[tuple[str, str]] = []
        cached = predict(run, files, top_k=3, batch_size=8, skipped=skipped, use_cache=True)
        assert _as_lists(cached) == _as_lists(direct), attempt  # same files, classes and probabilities
        assert skipped == skipped_direct, attempt
        assert len(list(cache.glob("decoded-*.npy"))) == 1, attempt
    assert [Path(p).name for p, _ in skipped_direct] == ["03b-cut.png", "07b-empty.jpg", "11b-text.jpg"]
    assert len(direct) == 20 and [p.path for p in direct] == [str(f) for f in files if f in good]


def test_probabilities_match_a_plain_forward_pass(run: _Run, cache: Path, tmp_path: Path) -> None:
    files = _photos(tmp_path / "f", 18)
    preds = predict(run, files, top_k=4, batch_size=5)  # 18 files: the cache, by default
    assert len(list(cache.glob("decoded-*.npy"))) == 1
    with torch.no_grad():  # the reference: NCHW, float64, images decoded one by one
        x = run.preprocess.normalize(run.preprocess.load(files)).double()
        ref = torch.softmax(run.model.double()(x), dim=1)
    for p, row in zip(preds, ref, strict=True):
        order = torch.argsort(row, descending=True).tolist()
        assert [c for c, _ in p.top_k] == [run.classes[j] for j in order]
        assert [v for _, v in p.top_k] == pytest.approx(row[order].tolist(), rel=1e-5, abs=1e-7)


def test_a_broken_file_raises_the_same_error_with_and_without_the_cache(
    run: _Run, cache: Path, tmp_path: Path
) -> None:
    good = _photos(tmp_path / "f", 20)
    _broken(tmp_path / "f", good[0])
    files = sorted((tmp_path / "f").iterdir())
    with pytest.raises(DataError) as direct:
        predict(run, files, use_cache=False)
    with pytest.raises(DataError) as cached:
        predict(run, files, use_cache=True)
    assert str(cached.value) == str(direct.value)
    assert "03b-cut.png" in str(direct.value)


def test_few_files_are_decoded_directly(run: _Run, cache: Path, tmp_path: Path) -> None:
    files = _photos(tmp_path / "f", CACHE_MIN_FILES - 1)
    assert len(predict(run, files)) == CACHE_MIN_FILES - 1
    assert not cache.exists()  # no cache entry for a handful of files (nor for one image)


def test_a_pretrained_crop_is_never_cached(run: _Run, cache: Path, tmp_path: Path) -> None:
    from cnnlab.models._weights import PretrainedCfg

    files = _photos(tmp_path / "f", 20)
    cfg = PretrainedCfg("test", input_size=(3, 24, 24), mean=(0.5,) * 3, std=(0.25,) * 3)
    crop = _Run(run.model, run.classes, Preprocess.from_weights(cfg))
    preds = predict(crop, files, use_cache=True)  # short-side resize + centre crop: not the cache's resize
    assert len(preds) == 20 and not cache.exists()
