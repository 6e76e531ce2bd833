"""Deletion / insertion curves against a plain per-step loop, and their basic invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.interpret.metrics import deletion_insertion


def _linear_model(h: int = 6, w: int = 6, classes: int = 3) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(h * w, classes)).eval()


def _reference_curve(model, image, saliency, target, steps, baseline, deletion):
    """Independent reference: numpy ranking, one forward pass per step."""
    h, w = saliency.shape
    order = np.argsort(-saliency.numpy().ravel(), kind="stable")
    out = []
    for s in range(steps + 1):
        k = round(s * h * w / steps)  # half to even, as torch.round
        mask = np.zeros(h * w, dtype=bool)
        mask[order[:k]] = True
        mask = torch.from_numpy(mask.reshape(h, w))
        x = image.clone()
        if deletion:
            x[:, mask] = baseline[:, mask]
        else:
            x = baseline.clone()
            x[:, mask] = image[:, mask]
        with torch.no_grad():
            out.append(float(model(x[None]).softmax(1)[0, target]))
    return np.array(out)


def test_curves_match_per_step_reference() -> None:
    model = _linear_model()
    images = torch.randn(3, 1, 6, 6)
    saliency = torch.rand(3, 6, 6)
    baseline = torch.full((1, 6, 6), 0.25)
    res = deletion_insertion(model, images, saliency, target=[0, 1, 2], steps=9, deletion_baseline=baseline,
                             insertion_baseline=baseline, batch_size=7)
    for i in range(3):
        ref_del = _reference_curve(model, images[i], saliency[i], i, 9, baseline, True)
        ref_ins = _reference_curve(model, images[i], saliency[i], i, 9, baseline, False)
        np.testing.assert_allclose(res.deletion[i].numpy(), ref_del, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res.insertion[i].numpy(), ref_ins, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(float(res.deletion_auc[i]), np.trapezoid(ref_del, np.linspace(0, 1, 10)),
                                   rtol=1e-5)
    # Endpoints: nothing removed = the intact image; everything inserted = the intact image.
    torch.testing.assert_close(res.deletion[:, 0], res.insertion[:, -1])


def test_exact_attribution_beats_its_reverse() -> None:
    """For a linear model, w * x is the exact contribution: deleting it first drops the score fastest."""
    model = _linear_model(classes=2)
    images = torch.randn(8, 1, 6, 6)
    weights = model[1].weight[1].detach().view(6, 6)
    attribution = weights * images[:, 0]
    good = deletion_insertion(model, images, attribution, target=1, steps=12)
    bad = deletion_insertion(model, images, -attribution, target=1, steps=12)
    assert bool((good.deletion_auc < bad.deletion_auc).all())
    assert bool((good.insertion_auc > bad.insertion_auc).all())


def test_shape_errors() -> None:
    with pytest.raises(CnnlabError, match="saliency"):
        deletion_insertion(_linear_model(), torch.randn(2, 1, 6, 6), torch.rand(3, 6, 6))
