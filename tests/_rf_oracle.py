"""The exact receptive-field oracle shared by the 2-D (tests/summary) and 1-D (tests/series) tests.

The receptive field of a unit is the support of d unit / d input. To make that support exact, nothing may
cancel or be cut: every conv/linear weight is the positive constant 1/fan_in, every bias and BN shift +0.1,
BN in unit statistics and the input all ones (every pre-activation positive, every ReLU passes its
gradient); max-pooling routes its gradient to one arg-max, so each max-pool becomes an average pool of the
same window (same geometry, a gradient that reaches all of it); the unit is the centre of the layer's output
(summed over channels), on an input large enough that the support touches no border (asserted).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

_POOLS = {nn.MaxPool1d: nn.AvgPool1d, nn.MaxPool2d: nn.AvgPool2d}


def oracle_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose gradient support is its receptive field (see the module docstring)."""
    m = copy.deepcopy(model).eval()
    for parent in list(m.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in _POOLS:
                assert child.dilation in (1, (1,), (1, 1))
                avg = _POOLS[type(child)](child.kernel_size, child.stride, child.padding,
                                          ceil_mode=child.ceil_mode)
                setattr(parent, name, avg)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                mod.weight.fill_(1.0 / mod.weight[0].numel())
                if mod.bias is not None:
                    mod.bias.fill_(0.1)
            elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.weight.fill_(1.0)
                mod.bias.fill_(0.1)
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
    return m


def oracle_fields(
    model: nn.Module, input_size: tuple[int, ...], names: list[str]
) -> dict[str, tuple[int, ...]]:
    """Gradient-support extent along each spatial axis (rows, cols; or samples) of the centre unit of each
    named layer's output, for an input of ``input_size`` (C, H, W) or (C, L)."""
    m = oracle_model(model)
    outs: dict[str, torch.Tensor] = {}
    hooks = [
        m.get_submodule(n).register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, o)) for n in names
    ]
    x = torch.ones(1, *input_size, requires_grad=True)
    try:
        m(x)
    finally:
        for h in hooks:
            h.remove()
    result = {}
    for n in names:
        o = outs[n]
        unit = o[(0, slice(None), *(s // 2 for s in o.shape[2:]))].sum()
        (g,) = torch.autograd.grad(unit, x, retain_graph=True)
        support = g[0].abs().sum(0) > 0
        extent = []
        for axis in range(support.dim()):
            others = tuple(a for a in range(support.dim()) if a != axis)
            idx = (support.any(others) if others else support).nonzero().flatten()
            clipped = idx.min() == 0 or idx.max() == input_size[1 + axis] - 1
            assert not clipped, f"{n}: field clipped by the border; use a larger input"
            extent.append(int(idx.max() - idx.min() + 1))
        result[n] = tuple(extent)
    return result
