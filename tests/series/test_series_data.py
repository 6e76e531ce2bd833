"""Series data: the UCR/UEA copies inside aeon (``ucr:NAME``), your own series (``series:FILE``), their
refusals, and the series augmentation preset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.data import load_data
from cnnlab.data.datamodule import ImageDataModule
from cnnlab.data.series import list_ucr
from cnnlab.data.series_augment import SeriesAugment
from cnnlab.data.transforms import BatchAugment
from cnnlab.errors import CnnlabError, DataError


@pytest.mark.parametrize(
    ("name", "shape", "sizes", "classes"),
    [
        ("GunPoint", (1, 150), (50, 150), ["1", "2"]),  # the archive's published split sizes
        ("ItalyPowerDemand", (1, 24), (67, 1029), ["1", "2"]),
        ("BasicMotions", (6, 100), (40, 40), ["badminton", "running", "standing", "walking"]),  # multivariate
    ],
)
def test_ucr_datasets_come_from_aeon_with_their_own_split(name, shape, sizes, classes) -> None:
    b = load_data(f"ucr:{name}")
    assert b.is_series and b.image_shape == shape
    assert (len(b.train), len(b.val)) == sizes
    assert b.classes == classes
    assert b.train.images.dtype == torch.float32 and tuple(b.train.images.shape[1:]) == shape
    assert sorted(set(b.val.labels.tolist())) == list(range(len(classes)))


def test_aeon_reads_the_same_values() -> None:
    from aeon.datasets import load_classification

    x, y = load_classification("GunPoint", split="test")
    b = load_data("ucr:GunPoint")
    np.testing.assert_allclose(b.val.images.numpy(), x.astype(np.float32))
    assert [b.classes[i] for i in b.val.labels.tolist()] == [str(v) for v in y]


def test_unknown_and_unusable_ucr_names_are_one_line_errors() -> None:
    with pytest.raises(CnnlabError) as err:
        load_data("ucr:GunPont")
    msg = str(err.value)
    assert "GunPoint" in msg and "ItalyPowerDemand" in msg and "\n" not in msg
    with pytest.raises(DataError, match=r"unequal length .* ucr:JapaneseVowels_eq"):
        load_data("ucr:JapaneseVowels")
    assert "Covid3Month" not in list_ucr()  # a regression set: no class labels
    assert {"GunPoint", "ItalyPowerDemand", "ArrowHead", "OSULeaf", "BasicMotions"} <= set(list_ucr())


def test_own_series_as_csv_npy_and_npz(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 32)).astype(np.float32)
    y = np.array(["up", "down"] * 20)
    csv = tmp_path / "s.csv"
    rows = [f"{c}," + ",".join(f"{v:.6f}" for v in row) for c, row in zip(y, x, strict=True)]
    csv.write_text("class," + ",".join(f"t{i}" for i in range(32)) + "\n" + "\n".join(rows))
    b = load_data(f"series:{csv}", val_split=0.25)
    assert b.classes == ["down", "up"] and b.image_shape == (1, 32)
    assert (len(b.train), len(b.val)) == (30, 10)
    npz = tmp_path / "s.npz"
    np.savez(npz, x=x.reshape(40, 2, 16), y=y, x_val=x[:6].reshape(6, 2, 16), y_val=y[:6])
    b2 = load_data(f"series:{npz}")
    assert b2.image_shape == (2, 16) and (len(b2.train), len(b2.val)) == (40, 6)
    npy = tmp_path / "s.npy"
    np.save(npy, np.column_stack([np.arange(40) % 2, x]))
    assert load_data(f"series:{npy}").classes == ["0", "1"]
    x[3, 4] = np.nan
    np.savez(npz, x=x, y=y)
    with pytest.raises(DataError, match="missing values"):
        load_data(f"series:{npz}")
    with pytest.raises(DataError, match="no such file"):
        load_data(f"series:{tmp_path / 'none.csv'}")


def test_series_augmentation_is_seeded_train_only_and_refused_on_images() -> None:
    b = load_data("ucr:GunPoint")
    x = b.train.images[:8]
    a1, a2 = SeriesAugment("series", seed=3), SeriesAugment("series", seed=3)
    y1, y2 = a1(x), a2(x)
    assert torch.equal(y1, y2) and y1.shape == x.shape
    assert not torch.allclose(y1, x)
    assert not torch.equal(SeriesAugment("series", seed=4)(x), y1)
    assert torch.equal(SeriesAugment("none")(x), x)
    dm = ImageDataModule(b, batch_size=8, augment="series", seed=0)
    batch = (x, b.train.labels[:8])
    assert torch.equal(dm.transform_batch(batch, train=False)[0], x)  # validation: untouched
    assert not torch.equal(dm.transform_batch(batch, train=True)[0], x)
    with pytest.raises(CnnlabError, match="augments images"):
        ImageDataModule(b, augment="standard")
    with pytest.raises(CnnlabError, match="augments series"):
        BatchAugment("series")
