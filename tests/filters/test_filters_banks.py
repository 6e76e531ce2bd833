"""Filter banks against scikit-image, OpenCV, scipy.ndimage and PyWavelets (acceptance 2)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import pywt
import scipy.ndimage as ndi
import torch
from skimage.feature import haar_like_feature, haar_like_feature_coord
from skimage.filters import gabor_kernel
from skimage.transform import integral_image

from cnnlab.errors import CnnlabError
from cnnlab.filters import apply_bank, list_banks, make_bank, register_bank

F64 = torch.float64


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).random((23, 29))


def centre_crop(kernel: torch.Tensor, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's centre of ``shape`` and everything outside it (which must be the zero padding)."""
    k = kernel.numpy()
    top, left = (k.shape[0] - shape[0]) // 2, (k.shape[1] - shape[1]) // 2
    inner = k[top: top + shape[0], left: left + shape[1]].copy()
    outer = k.copy()
    outer[top: top + shape[0], left: left + shape[1]] = 0
    return inner, outer


def test_filters_registry_lists_every_bank_and_rejects_duplicates():
    expected = {"gabor", "sobel", "scharr", "prewitt", "laplacian", "log", "dog", "box", "gaussian",
                "sharpen", "emboss", "haar", "haar_wavelet"}
    assert expected <= set(list_banks())
    with pytest.raises(CnnlabError, match="already registered"):
        register_bank("sobel")(lambda: None)
    with pytest.raises(CnnlabError, match="did you mean gabor"):
        make_bank("gabr")
    with pytest.raises(CnnlabError, match="unknown parameter"):
        make_bank("sobel", sigma=2)
    for name in list_banks():
        bank = make_bank(name)
        assert bank.weight.ndim == 4 and bank.weight.dtype == torch.float32
        assert len(bank.names) == len(bank.params) == bank.out_channels


# ---- Gabor ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigmas,gamma", [(None, 1.0), ((2.0, 3.5), 1.0), ((2.5,), 0.5)])
def test_filters_gabor_equals_skimage_real_part(sigmas, gamma):
    bank = make_bank("gabor", dtype=F64, frequencies=(0.08, 0.2, 0.33), thetas=5, sigmas=sigmas,
                     phases=(0.0, math.pi / 2, -1.0), gamma=gamma, bandwidth=1.4)
    assert bank.out_channels == 3 * 5 * (1 if sigmas is None else len(sigmas)) * 3
    for weight, p in zip(bank.weight[:, 0], bank.params, strict=True):
        ref = gabor_kernel(p["frequency"], theta=p["theta"], bandwidth=1.4,
                           sigma_x=None if sigmas is None else p["sigma_x"],
                           sigma_y=None if sigmas is None else p["sigma_y"], offset=p["phase"]).real
        inner, outer = centre_crop(weight, ref.shape)
        np.testing.assert_allclose(inner, ref, rtol=1e-12, atol=1e-15)
        assert not outer.any()


def test_filters_gabor_equals_opencv_getgaborkernel():
    """Mapping: ksize=(w, h), sigma=σx, theta=θ, lambd=1/f, gamma=σx/σy, psi=-φ; OpenCV omits 1/(2π σx σy)."""
    bank = make_bank("gabor", dtype=F64, frequencies=(0.1, 0.25), thetas=(0.0, 0.4, 1.3, 2.9), sigmas=(3.0,),
                     phases=(0.0, 0.8), gamma=0.6)
    for weight, p in zip(bank.weight[:, 0], bank.params, strict=True):
        h, w = p["size"]
        sx, sy = p["sigma_x"], p["sigma_y"]
        cvk = cv2.getGaborKernel((w, h), sigma=sx, theta=p["theta"], lambd=1 / p["frequency"], gamma=sx / sy,
                                 psi=-p["phase"], ktype=cv2.CV_64F) / (2 * math.pi * sx * sy)
        inner, _ = centre_crop(weight, (h, w))
        np.testing.assert_allclose(inner, cvk, rtol=1e-9, atol=1e-12)


# ---- edges and blurs against scipy.ndimage / OpenCV -------------------------------------------------


def test_filters_sobel_equals_scipy_ndimage_sobel(image):
    """x = columns = ndimage axis 1, y = rows = axis 0; zeros <-> mode 'constant', symmetric <-> 'reflect'."""
    bank = make_bank("sobel", dtype=F64)
    assert bank.response_names == ["sobel x", "sobel y", "sobel magnitude"]
    for boundary, mode in [("zeros", "constant"), ("symmetric", "reflect"), ("replicate", "nearest"),
                           ("reflect", "mirror"), ("circular", "wrap")]:
        r = apply_bank(image, bank, boundary=boundary)[0].numpy()
        gx, gy = ndi.sobel(image, axis=1, mode=mode), ndi.sobel(image, axis=0, mode=mode)
        np.testing.assert_allclose(r[0], gx, atol=1e-12, err_msg=boundary)
        np.testing.assert_allclose(r[1], gy, atol=1e-12, err_msg=boundary)
        np.testing.assert_allclose(r[2], np.hypot(gx, gy), atol=1e-12, err_msg=boundary)


def test_filters_prewitt_laplace_gaussian_log_dog_box_match_scipy(image):
    def resp(name, **kw):
        return apply_bank(image, make_bank(name, dtype=F64, **kw))[0].numpy()

    r = resp("prewitt")
    np.testing.assert_allclose(r[0], ndi.prewitt(image, axis=1, mode="constant"), atol=1e-12)
    np.testing.assert_allclose(r[1], ndi.prewitt(image, axis=0, mode="constant"), atol=1e-12)
    np.testing.assert_allclose(resp("laplacian")[0], ndi.laplace(image, mode="constant"), atol=1e-12)
    np.testing.assert_allclose(resp("sharpen")[0], image - ndi.laplace(image, mode="constant"), atol=1e-12)
    for i, s in enumerate((0.7, 1.5)):
        np.testing.assert_allclose(resp("gaussian", sigmas=(0.7, 1.5))[i],
                                   ndi.gaussian_filter(image, s, mode="constant"), atol=1e-12)
        np.testing.assert_allclose(resp("log", sigmas=(0.7, 1.5))[i],
                                   ndi.gaussian_laplace(image, s, mode="constant"), atol=1e-12)
        wide = ndi.gaussian_filter(image, 1.6 * s, mode="constant")
        dog = ndi.gaussian_filter(image, s, mode="constant") - wide
        np.testing.assert_allclose(resp("dog", sigmas=(0.7, 1.5))[i], dog, atol=1e-12)
    for i, k in enumerate((3, 5)):
        box = ndi.uniform_filter(image, k, mode="constant")
        np.testing.assert_allclose(resp("box", sizes=(3, 5))[i], box, atol=1e-12)


def test_filters_scharr_equals_opencv(image):
    r = apply_bank(image, make_bank("scharr", dtype=F64), boundary="reflect")[0].numpy()
    border = cv2.BORDER_REFLECT_101  # = torch/np "reflect" (edge not repeated)
    np.testing.assert_allclose(r[0], cv2.Scharr(image, cv2.CV_64F, 1, 0, borderType=border), atol=1e-10)
    np.testing.assert_allclose(r[1], cv2.Scharr(image, cv2.CV_64F, 0, 1, borderType=border), atol=1e-10)


# ---- Haar ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(16, 20), (15, 11)])
def test_filters_haar_wavelet_equals_pywt_dwt2(shape):
    img = np.random.default_rng(3).random(shape)
    bank = make_bank("haar_wavelet", dtype=F64)
    assert bank.stride == 2
    r = apply_bank(img, bank, boundary="symmetric")[0].numpy()  # PyWavelets' default mode is "symmetric"
    ca, (ch, cv, cd) = pywt.dwt2(img, "haar")
    assert r.shape == (4, *ca.shape)
    for got, ref in zip(r, (ca, ch, cv, cd), strict=True):
        np.testing.assert_allclose(got, ref, atol=1e-12)


def tiles_window(rects, size: int) -> bool:
    """True when equal-sized rectangles ((r0, c0), (r1, c1)) cover the whole size x size window."""
    corners = np.array([np.array(rect) for rect in rects])  # [n_rects, 2 corners, (row, col)]
    sizes = {tuple(rect[1] - rect[0]) for rect in corners}
    points = corners.reshape(-1, 2)
    return bool((points.min(0) == 0).all() and (points.max(0) == size - 1).all() and len(sizes) == 1)


def test_filters_haar_unbalanced_equals_skimage_haar_like_feature():
    """The "unbalanced" form is the Viola-Jones paper's, as scikit-image computes it."""
    size = 6
    img = np.random.default_rng(4).random((14, 15))
    bank = make_bank("haar", dtype=F64, size=size, form="unbalanced")
    r = apply_bank(img, bank, padding="valid")[0].numpy()  # r[:, i, j] = window with top-left (i, j)
    for f, p in enumerate(bank.params):
        coords, types = haar_like_feature_coord(size, size, p["type"])
        # the feature whose rectangles tile the whole window
        whole = [i for i, c in enumerate(coords) if tiles_window(c, size)]
        assert len(whole) == 1, p["type"]
        for i, j in [(0, 0), (3, 5), (8, 9)]:
            # the window's own integral image (skimage's r, c offsets are not used: window at 0, 0)
            ii = integral_image(img[i: i + size, j: j + size])
            ref = haar_like_feature(ii, 0, 0, size, size, feature_type=types[whole],
                                    feature_coord=coords[whole])[0]
            assert r[f, i, j] == pytest.approx(ref, abs=1e-9), (p["type"], i, j)


# OpenCV's upright Haar features (apps/traincascade/haarfeatures.cpp, CvHaarEvaluator::generateFeatures),
# transcribed as data for a window of side s: rectangles (x, y, width, height, weight) whose weighted sums
# make one feature. The three-rectangle ones are "whole window -1, centre +3".
def opencv_haar_rects(s: int) -> dict[str, list[tuple[int, int, int, int, float]]]:
    h, t = s // 2, s // 3
    return {
        "haar_x2": [(0, 0, 2 * h, s, -1), (h, 0, h, s, +2)],
        "haar_y2": [(0, 0, s, 2 * h, -1), (0, h, s, h, +2)],
        "haar_x3": [(0, 0, 3 * t, s, -1), (t, 0, t, s, +3)],
        "haar_y3": [(0, 0, s, 3 * t, -1), (0, t, s, t, +3)],
        "x2_y2": [(0, 0, 2 * h, 2 * h, -1), (0, 0, h, h, +2), (h, h, h, h, +2)],
    }


#: cnnlab type -> (OpenCV feature, sign): OpenCV's x2_y2 weights the main diagonal, type-4 the other one.
OPENCV_OF = {"type-2-x": ("haar_x2", 1), "type-2-y": ("haar_y2", 1), "type-3-x": ("haar_x3", 1),
             "type-3-y": ("haar_y3", 1), "type-4": ("x2_y2", -1)}


@pytest.mark.parametrize("size", [6, 12])
def test_filters_haar_default_is_zero_mean_and_equals_opencv_cascade_features(size):
    img = np.random.default_rng(5).random((20, 17))
    bank = make_bank("haar", dtype=F64, size=size)
    assert [p["form"] for p in bank.params] == ["zero-mean"] * 5
    r = apply_bank(img, bank, padding="valid")[0].numpy()
    ii = cv2.integral(img)  # OpenCV's own summed-area table, [H+1, W+1]

    def rect_sum(i: int, j: int, x: int, y: int, w: int, h: int) -> float:
        r0, c0 = i + y, j + x
        return ii[r0 + h, c0 + w] - ii[r0, c0 + w] - ii[r0 + h, c0] + ii[r0, c0]

    rects = opencv_haar_rects(size)
    for f, p in enumerate(bank.params):
        feature, sign = OPENCV_OF[p["type"]]
        for i, j in [(0, 0), (4, 3), (20 - size, 17 - size)]:
            ref = sum(wt * rect_sum(i, j, x, y, w, h) for x, y, w, h, wt in rects[feature])
            assert r[f, i, j] == pytest.approx(sign * ref, abs=1e-9), (p["type"], i, j)
    # Every kernel sums to 0, so a flat image gives no response anywhere (padding "valid": no border).
    np.testing.assert_allclose(bank.weight.sum(dim=(1, 2, 3)).numpy(), 0.0, atol=1e-12)
    flat = apply_bank(np.full((20, 17), 0.7), bank, padding="valid")[0].numpy()
    np.testing.assert_allclose(flat, 0.0, atol=1e-12)


def test_filters_haar_unbalanced_three_rect_sums_to_minus_a_third_of_the_window():
    """The paper's form: centre minus both sides, so a flat region of value v gives -v·s²/3 (-12·v at 6x6)."""
    bank = make_bank("haar", dtype=F64, form="unbalanced")
    sums = dict(zip([p["type"] for p in bank.params], bank.weight.sum(dim=(1, 2, 3)).tolist(), strict=True))
    assert sums == {"type-2-x": 0.0, "type-2-y": 0.0, "type-3-x": -12.0, "type-3-y": -12.0, "type-4": 0.0}
    flat = apply_bank(np.full((9, 9), 0.5), bank, padding="valid")[0].numpy()
    np.testing.assert_allclose(flat[2:4], -6.0, atol=1e-12)
    three = [n for n in bank.names if "three" in n]
    assert three == ["three-rect x 6px unbalanced", "three-rect y 6px unbalanced"]
    with pytest.raises(CnnlabError, match="form='paper': choose zero-mean or unbalanced"):
        make_bank("haar", form="paper")


# ---- apply_bank ------------------------------------------------------------------------------------


def test_filters_apply_bank_batches_and_channel_policy():
    g = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (5, 3, 16, 18), generator=g, dtype=torch.uint8)
    bank = make_bank("gabor", frequencies=(0.2, 0.3), thetas=3, phases=(0.0, 1.0))
    out = apply_bank(batch, bank)
    assert out.shape == (5, 12, 16, 18) and out.dtype == torch.float32
    # uint8 -> [0, 1], then the one-channel bank sees the channel mean.
    grey = batch.float().mean(dim=1, keepdim=True) / 255.0
    expected = torch.nn.functional.conv2d(grey, bank.weight, padding="same")
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # per-image results do not depend on the batch they came in
    torch.testing.assert_close(apply_bank(batch[2], bank)[0], out[2], rtol=1e-5, atol=1e-5)


def test_filters_bad_bank_parameters_raise_one_line():
    cases = [("gabor", {"frequencies": (0.0,)}), ("gabor", {"thetas": 0}), ("haar", {"size": 8}),
             ("laplacian", {"neighbours": 6}), ("box", {"sizes": (0,)}), ("log", {"sigmas": -1.0})]
    for name, kwargs in cases:
        with pytest.raises(CnnlabError) as info:
            make_bank(name, **kwargs)
        assert "\n" not in str(info.value)
