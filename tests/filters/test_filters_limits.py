"""Banks, kernels and responses are bounded before anything is allocated (issue 12: 5.3 GB for 1e6 thetas)."""

from __future__ import annotations

import contextlib
import tracemalloc

import numpy as np
import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.filters import BankParamError, apply_bank, make_bank, response_shape
from cnnlab.filters._limits import DEFAULT_MAX_FILTERS, ENV_MAX_FILTERS, MAX_KERNEL_SIDE
from cnnlab.memory import ENV_MAX_MEMORY


def _peak_bytes(fn) -> int:
    """Peak Python/numpy allocation while ``fn()`` runs (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    with contextlib.suppress(CnnlabError):
        fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_a_million_orientations_is_refused_before_any_kernel_is_built():
    with pytest.raises(BankParamError) as info:
        make_bank("gabor", thetas=1_000_000)
    err = info.value
    assert err.param == "thetas" and err.value == 1_000_000
    msg = str(err)
    assert "3 frequencies x 1000000 thetas" in msg and "3,000,000 kernels" in msg
    assert f"limit of {DEFAULT_MAX_FILTERS:,}" in msg and f"{ENV_MAX_FILTERS}=3000000" in msg
    assert "\n" not in msg
    # refused up front: not even the list of angles is built (3e6 kernels of 19x19 float64 were 8.7 GB)
    assert _peak_bytes(lambda: make_bank("gabor", thetas=1_000_000)) < 1_000_000


def test_the_kernel_limit_is_raised_by_its_environment_variable(monkeypatch):
    with pytest.raises(BankParamError, match="thetas=400"):
        make_bank("gabor", thetas=400)  # 3 x 400 = 1200 > 1024
    monkeypatch.setenv(ENV_MAX_FILTERS, "1200")
    assert make_bank("gabor", thetas=400).out_channels == 1200
    monkeypatch.setenv(ENV_MAX_FILTERS, "lots")
    with pytest.raises(CnnlabError, match=f"{ENV_MAX_FILTERS}='lots': give a positive whole number"):
        make_bank("gabor")


@pytest.mark.parametrize(("bank", "kwargs", "param"), [
    ("gabor", {"frequencies": (1e-6,)}, "frequencies"),   # σ ∝ 1/f: a 3,373,033-pixel kernel
    ("gabor", {"sigmas": (1e9,)}, "sigmas"),
    ("gabor", {"bandwidth": 1e-9}, "frequencies"),        # a tiny bandwidth widens σ for every frequency
    ("gaussian", {"sigmas": (1e12,)}, "sigmas"),
    ("log", {"sigmas": (65.0,)}, "sigmas"),               # radius int(4·65 + 0.5) = 260 -> 521 px
    ("dog", {"ratio": 1000.0}, "ratio"),
    ("box", {"sizes": (10**9,)}, "sizes"),
    ("haar", {"size": 600}, "size"),
])
def test_absurd_kernel_sizes_are_refused_naming_the_parameter(bank, kwargs, param):
    with pytest.raises(BankParamError) as info:
        make_bank(bank, **kwargs)
    assert info.value.param == param
    assert f"over the largest allowed ({MAX_KERNEL_SIDE}x{MAX_KERNEL_SIDE})" in str(info.value)
    assert _peak_bytes(lambda: make_bank(bank, **kwargs)) < 1_000_000


def test_largest_allowed_sizes_still_build():
    assert make_bank("gaussian", sigmas=(32.0,)).kernel_size == (257, 257)  # radius 128
    assert make_bank("box", sizes=(MAX_KERNEL_SIDE,)).kernel_size == (257, 257)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0, 0.0])
def test_non_finite_or_non_positive_sigmas_are_one_line_errors(value):
    with pytest.raises(BankParamError, match="positive \\(finite\\) numbers"):
        make_bank("gaussian", sigmas=(value,))


@pytest.mark.parametrize(("bank", "kwargs", "padding", "shape"), [
    ("gabor", {}, "same", (3, 1, 23, 29)),
    ("sobel", {}, "valid", (2, 1, 23, 29)),
    ("haar_wavelet", {}, "same", (1, 1, 15, 11)),
    ("haar", {"size": 12}, "valid", (2, 1, 30, 12)),
])
def test_response_shape_predicts_apply_bank(bank, kwargs, padding, shape):
    fbank = make_bank(bank, **kwargs)
    out = apply_bank(torch.rand(shape), fbank, padding=padding)
    assert out.shape[1:] == response_shape(fbank, shape[2], shape[3], padding=padding)
    n, _, _ = response_shape(fbank, shape[2], shape[3], padding=padding, derived=False)
    assert n == fbank.out_channels


def test_responses_over_the_memory_budget_are_refused(monkeypatch):
    bank = make_bank("gabor")  # 12 responses: 12 x 512 x 512 x 4 bytes = 12 MiB per image
    monkeypatch.setenv(ENV_MAX_MEMORY, str(8 / 1024))  # the one memory budget of cnnlab, in GiB: 8 MiB
    with pytest.raises(CnnlabError) as info:
        apply_bank(np.zeros((512, 512), np.float32), bank)
    msg = str(info.value)
    assert "gabor responses (1 image(s) x 12 x 512x512) needs about 12 MiB" in msg
    assert "memory budget of 8 MiB" in msg and f"{ENV_MAX_MEMORY}=1" in msg
    assert apply_bank(np.zeros((256, 256), np.float32), bank).shape == (1, 12, 256, 256)  # 3 MiB fits
    monkeypatch.setenv(ENV_MAX_MEMORY, str(12 / 1024))
    assert apply_bank(np.zeros((512, 512), np.float32), bank).shape == (1, 12, 512, 512)


def test_kernel_stack_over_the_memory_budget_is_refused(monkeypatch):
    monkeypatch.setenv(ENV_MAX_MEMORY, str(1 / 1024))  # 40 box kernels padded to 257x257 float64 = 20 MiB
    with pytest.raises(CnnlabError, match=r"box bank \(40 kernels of 257x257 float64\) needs about 20 MiB"):
        make_bank("box", sizes=[257] + [3] * 39)
