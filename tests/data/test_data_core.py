"""Dataset types and split helpers: invariants (property-based) and the summary contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.data import DataBundle, ImageTensorDataset, SkippedFile, stratified_split, stratified_take

labels_st = st.lists(st.integers(0, 4), min_size=1, max_size=200).map(np.array)


@settings(max_examples=60, deadline=None)
@given(labels=labels_st, frac=st.floats(0.0, 0.9), seed=st.integers(0, 2**31 - 1))
def test_stratified_split_partitions_each_class(labels: np.ndarray, frac: float, seed: int) -> None:
    tr, va = stratified_split(labels, frac, seed=seed)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(len(labels)))
    for c in np.unique(labels):
        n = int((labels == c).sum())
        n_val = int((labels[va] == c).sum())
        if frac > 0 and n >= 2:
            assert 1 <= n_val <= n - 1 and abs(n_val - n * frac) <= 1.0
        elif frac == 0:
            assert n_val == 0
    again = stratified_split(labels, frac, seed=seed)
    assert np.array_equal(again[1], va)


@settings(max_examples=60, deadline=None)
@given(labels=labels_st, n=st.integers(1, 250))
def test_stratified_take_keeps_proportions(labels: np.ndarray, n: int) -> None:
    idx = stratified_take(labels, n)
    assert len(idx) == min(n, len(labels)) and len(set(idx.tolist())) == len(idx)
    for c in np.unique(labels):
        share = (labels == c).sum() * len(idx) / len(labels)
        assert abs((labels[idx] == c).sum() - share) < 1.0 + 1e-9


def test_dataset_and_summary_contract() -> None:
    images = torch.arange(6 * 1 * 2 * 2, dtype=torch.uint8).view(6, 1, 2, 2)
    ds = ImageTensorDataset(images, torch.tensor([0, 1, 0, 1, 1, 1]), ["a", "b"])
    x, y = ds[3]
    assert torch.equal(x, images[3]) and y == 1 and isinstance(y, int)
    xb, yb = ds.get_batch(torch.tensor([5, 0]))
    assert torch.equal(xb, images[[5, 0]]) and yb.tolist() == [1, 0] and yb.dtype == torch.int64
    assert ds.class_counts() == [2, 4] and len(ds) == 6
    bundle = DataBundle(
        "toy", ["a", "b"], ds, ds.subset(np.array([1, 2])), (1, 2, 2), [SkippedFile("p", "r")]
    )
    assert bundle.summary() == {
        "classes": ["a", "b"],
        "splits": {"train": 6, "val": 2},
        "image_shape": [1, 2, 2],
        "skipped": [{"path": "p", "reason": "r"}],
    }
    with pytest.raises(ValueError, match="uint8"):
        ImageTensorDataset(images.float(), torch.zeros(6), ["a"])
