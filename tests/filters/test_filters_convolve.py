"""convolve2d against scipy.signal and torch's F.conv2d (acceptance 1) and its errors (acceptance 3)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.filters import convolve2d, output_size

METHODS = ["fast", "reference"]
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dilate(kernel: np.ndarray, d: tuple[int, int]) -> np.ndarray:
    """Insert d-1 zeros between kernel taps (what dilation means), so scipy can be the reference."""
    kh, kw = kernel.shape
    out = np.zeros((d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1))
    out[:: d[0], :: d[1]] = kernel
    return out


def scipy_reference(img: np.ndarray, ker: np.ndarray, padding, s, d, flip: bool) -> np.ndarray:
    """scipy.signal.correlate2d (convolve2d when flip) on the dilated kernel, then subsample by the stride."""
    fn = scipy.signal.convolve2d if flip else scipy.signal.correlate2d
    kd = dilate(ker, d)
    if padding == "same":
        full = fn(img, kd, mode="same")
    else:
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        full = fn(np.pad(img, ((ph, ph), (pw, pw))), kd, mode="valid")
    return full[:: s[0], :: s[1]]


def fits(img_hw, ker_hw, padding, d) -> bool:
    if padding == "same":
        return True
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return all(n + 2 * p >= dd * (k - 1) + 1 for n, k, p, dd in zip(img_hw, ker_hw, (ph, pw), d, strict=True))


paddings = st.one_of(
    st.just("same"),
    st.just("valid"),
    st.integers(0, 3),
    st.tuples(st.integers(0, 3), st.integers(0, 3)),
)
pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


@PROPERTY
@given(
    h=st.integers(1, 12), w=st.integers(1, 12), kh=st.integers(1, 5), kw=st.integers(1, 5),
    padding=paddings, stride=pairs, dilation=pairs, flip=st.booleans(), seed=st.integers(0, 2**16),
)
def test_filters_2d_equals_scipy_both_paths(h, w, kh, kw, padding, stride, dilation, flip, seed):
    rng = np.random.default_rng(seed)
    img, ker = rng.normal(size=(h, w)), rng.normal(size=(kh, kw))
    padding_arg = "valid" if padding == "valid" else padding
    pad_for_ref = 0 if padding == "valid" else padding
    if not fits((h, w), (kh, kw), pad_for_ref, dilation):
        for method in METHODS:
            with pytest.raises(CnnlabError, match="larger than the padded image"):
                convolve2d(img, ker, padding=padding_arg, stride=stride, dilation=dilation, method=method)
        return
    expected = scipy_reference(img, ker, pad_for_ref, stride, dilation, flip)
    for method in METHODS:
        got = convolve2d(img, ker, padding=padding_arg, stride=stride, dilation=dilation, flip=flip,
                         method=method)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64
        assert got.shape == expected.shape, (method, got.shape, expected.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=method)


@PROPERTY
@given(
    n=st.integers(1, 2), c=st.integers(1, 3), o=st.integers(1, 3), h=st.integers(3, 10), w=st.integers(3, 10),
    k=st.integers(1, 3), pad=st.integers(0, 2), stride=pairs, dilation=pairs, flip=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_filters_bank_batch_equals_torch_conv2d(n, c, o, h, w, k, pad, stride, dilation, flip, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    bank = torch.randn(o, c, k, k, generator=g, dtype=torch.float64)
    if any(size + 2 * pad < d * (k - 1) + 1 for size, d in zip((h, w), dilation, strict=True)):
        with pytest.raises(CnnlabError):
            convolve2d(x, bank, padding=pad, stride=stride, dilation=dilation)
        return
    weight = torch.flip(bank, dims=(-2, -1)) if flip else bank  # flip=True: kernels rotated by 180°
    expected = F.conv2d(x, weight, padding=pad, stride=stride, dilation=dilation)
    for method in METHODS:
        got = convolve2d(x, bank, padding=pad, stride=stride, dilation=dilation, flip=flip, method=method)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9, msg=method)
    # The same numbers from scipy: sum over input channels of 2-D correlations.
    img, ker = x.numpy(), bank.numpy()
    def one(i: int, oi: int) -> np.ndarray:
        return sum(scipy_reference(img[i, ci], ker[oi, ci], pad, stride, dilation, flip) for ci in range(c))

    ref = np.stack([np.stack([one(i, oi) for oi in range(o)]) for i in range(n)])
    np.testing.assert_allclose(expected.numpy(), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@PROPERTY
@given(c=st.integers(1, 3), h=st.integers(4, 10), w=st.integers(4, 10), kh=st.integers(1, 4),
       kw=st.integers(1, 4), dilation=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_filters_same_stride1_equals_torch_same(c, h, w, kh, kw, dilation, seed):
    """'same' keeps the size and puts the extra row/column where torch's padding='same' does."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, c, h, w, generator=g, dtype=torch.float64)
    ker = torch.randn(kh, kw, generator=g, dtype=torch.float64)
    bank = ker.expand(c, 1, kh, kw)
    expected = F.conv2d(x, bank, padding="same", dilation=dilation, groups=c)
    for method in METHODS:
        # C x H x W with a 2-D kernel: applied to every channel.
        got = convolve2d(x[0], ker, padding="same", dilation=dilation, method=method)
        assert got.shape == (c, h, w)
        torch.testing.assert_close(got, expected[0], rtol=1e-9, atol=1e-9)


def test_filters_float32_and_uint8_kinds():
    rng = np.random.default_rng(0)
    img8 = rng.integers(0, 256, size=(9, 11), dtype=np.uint8)
    ker = rng.normal(size=(3, 3)).astype(np.float32)
    for method in METHODS:
        out = convolve2d(img8, ker, padding="same", method=method)
        assert out.dtype == np.float32 and out.shape == (9, 11)
        np.testing.assert_allclose(out, scipy.signal.correlate2d(img8.astype(np.float64), ker, mode="same"),
                                   rtol=1e-5, atol=1e-3)
    t = torch.from_numpy(img8).float()
    assert convolve2d(t, torch.from_numpy(ker)).dtype == torch.float32


@pytest.mark.parametrize("boundary,scipy_mode", [("symmetric", "symm"), ("circular", "wrap")])
def test_filters_boundary_modes_match_scipy(boundary, scipy_mode):
    rng = np.random.default_rng(1)
    img, ker = rng.normal(size=(8, 9)), rng.normal(size=(3, 5))
    expected = scipy.signal.correlate2d(img, ker, mode="same", boundary=scipy_mode)
    for method in METHODS:
        np.testing.assert_allclose(convolve2d(img, ker, padding="same", boundary=boundary, method=method),
                                   expected, atol=1e-12)


@pytest.mark.parametrize("n,k,p,s,d", [(28, 3, 0, 1, 1), (28, 3, 1, 2, 1), (32, 5, 2, 3, 2), (7, 2, 0, 1, 3)])
def test_filters_output_size_formula(n, k, p, s, d):
    out = convolve2d(np.zeros((n, n)), np.ones((k, k)), padding=p, stride=s, dilation=d)
    assert out.shape == (output_size(n, k, pad=p, stride=s, dilation=d),) * 2
    assert out.shape[0] == (n + 2 * p - d * (k - 1) - 1) // s + 1


# ---- acceptance 3: one clear error each ------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_filters_error_kernel_larger_than_padded_image(method):
    with pytest.raises(CnnlabError, match=r"kernel 7x7 .* larger than the padded image 6x6"):
        convolve2d(np.zeros((4, 4)), np.ones((7, 7)), padding=1, method=method)
    with pytest.raises(CnnlabError, match=r"dilated extent 5x5"):
        convolve2d(np.zeros((4, 4)), np.ones((3, 3)), dilation=2, method=method)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 3), (1, 1, 1, 3, 3)])
def test_filters_error_non_2d_kernel(shape):
    with pytest.raises(CnnlabError, match=r"expected a 2-D kernel"):
        convolve2d(np.zeros((8, 8)), np.ones(shape))


@pytest.mark.parametrize("stride", [0, -1, (1, 0)])
def test_filters_error_bad_stride(stride):
    with pytest.raises(CnnlabError, match=r"stride=.*positive integer"):
        convolve2d(np.zeros((8, 8)), np.ones((3, 3)), stride=stride)


def test_filters_error_messages_are_one_line_and_other_bad_options():
    cases = [
        dict(dilation=0),
        dict(padding=-1),
        dict(padding="full"),
        dict(method="slow"),
        dict(boundary="mirror"),
    ]
    for kwargs in cases:
        with pytest.raises(CnnlabError) as info:
            convolve2d(np.zeros((8, 8)), np.ones((3, 3)), **kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(CnnlabError, match="expects 2 input channel"):
        convolve2d(np.zeros((3, 8, 8)), np.ones((4, 2, 3, 3)))
    with pytest.raises(CnnlabError, match="empty"):
        convolve2d(np.zeros((0, 8)), np.ones((3, 3)))


@pytest.mark.parametrize("method", METHODS)
def test_filters_grey_image_with_bank_and_channels_with_2d_kernel(method):
    rng = np.random.default_rng(2)
    img, bank = rng.normal(size=(9, 10)), rng.normal(size=(3, 1, 3, 4))
    out = convolve2d(img, bank, padding="same", method=method)  # H x W image, bank [out, 1, k, k]
    assert out.shape == (3, 9, 10)
    for o in range(3):
        np.testing.assert_allclose(out[o], scipy.signal.correlate2d(img, bank[o, 0], mode="same"), atol=1e-12)
    chans = rng.normal(size=(2, 9, 10))  # C x H x W image, one 2-D kernel applied per channel
    out = convolve2d(chans, bank[0, 0], stride=2, method=method)
    for c in range(2):
        ref = scipy.signal.correlate2d(chans[c], bank[0, 0], mode="valid")[::2, ::2]
        np.testing.assert_allclose(out[c], ref, atol=1e-12)
