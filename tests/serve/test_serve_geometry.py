"""The geometry between the original photo and the model's input, against the real preprocessing.

The reference is :meth:`Preprocess.load` itself (torchvision v2's Resize + CenterCrop for pretrained
weights, the run's resize otherwise) on a photo whose pixels hold their own coordinates: the input pixel
at (r, c) must carry the coordinates the geometry maps it back to.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.data.transforms import Preprocess
from cnnlab.serve.geometry import display_size, geometry_of


def _ramp_photo(h: int, w: int) -> bytes:
    """RGB PNG: red = column, green = row (each scaled to 0..255 over the photo)."""
    from PIL import Image

    ys, xs = np.mgrid[0:h, 0:w]
    px = np.zeros((h, w, 3), dtype=np.uint8)
    px[..., 0] = np.round(xs * 255 / (w - 1))
    px[..., 1] = np.round(ys * 255 / (h - 1))
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="PNG")
    return buf.getvalue()


def _weights_preprocess() -> Preprocess:
    from cnnlab.models._weights import PretrainedCfg

    cfg = PretrainedCfg(source="test", mean=(0.5,) * 3, std=(0.5,) * 3, input_size=(3, 224, 224),
                        interpolation="bicubic", crop_pct=0.875)
    return Preprocess.from_weights(cfg)


@pytest.mark.parametrize("size", [(300, 400), (500, 333), (256, 256), (180, 700)])
@pytest.mark.parametrize("kind", ["run", "weights"])
def test_input_pixels_map_back_to_where_they_came_from(kind: str, size: tuple[int, int]) -> None:
    pre = Preprocess((3, 224, 224), (0.5,) * 3, (0.5,) * 3) if kind == "run" else _weights_preprocess()
    h0, w0 = size
    raw = pre.load([io.BytesIO(_ramp_photo(h0, w0))])[0].double()
    geo = geometry_of(pre, size)
    for r in (20, 100, 200):
        for c in (20, 111, 203):
            x0, y0, x1, y1 = geo.to_original(r, c, r + 1, c + 1)
            x, y = (x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5  # centre, in pixel-index units
            assert float(raw[0, r, c]) * (w0 - 1) / 255 == pytest.approx(x, abs=max(1.5, w0 / 255))
            assert float(raw[1, r, c]) * (h0 - 1) / 255 == pytest.approx(y, abs=max(1.5, h0 / 255))


def test_the_crop_follows_torchvisions_sizes() -> None:
    from torchvision.transforms import v2

    pre = _weights_preprocess()
    for size in [(300, 400), (500, 333), (181, 700), (999, 256)]:
        geo = geometry_of(pre, size)
        resized = v2.Resize(256, antialias=True)(torch.zeros(3, *size, dtype=torch.uint8))
        assert geo.resized == tuple(resized.shape[1:])
        assert geo.crop == (round((resized.shape[1] - 224) / 2), round((resized.shape[2] - 224) / 2))
        x0, y0, x1, y1 = geo.region()
        assert min(x0, y0) >= 0 and x1 <= size[1] + 1e-9 and y1 <= size[0] + 1e-9
        # square, up to torchvision truncating the long side (int(256 * long / short)): the scales differ
        assert (x1 - x0) == pytest.approx(y1 - y0, rel=0.01)
        assert (x1 - x0) == pytest.approx(224 / geo.scale[1])


def test_a_map_on_a_resized_photo_is_its_bilinear_resize() -> None:
    pre = Preprocess((3, 28, 28), (0.0,) * 3, (1.0,) * 3)
    values = torch.rand(28, 28, generator=torch.Generator().manual_seed(0))
    for size in [(90, 120), (28, 28), (13, 50)]:
        out, mask = geometry_of(pre, size).map_onto(values, size)
        ref = F.interpolate(values[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
        assert bool(mask.all())


def test_a_map_on_a_cropped_photo_covers_only_the_crop() -> None:
    pre = _weights_preprocess()
    size = (300, 400)
    geo = geometry_of(pre, size)
    cols = torch.arange(224, dtype=torch.float64)
    values = (cols / 223).expand(224, 224).float()  # the input column, 0..1
    out, mask = geo.map_onto(values, size)
    x0, y0, x1, y1 = geo.region()
    inside = torch.zeros(size, dtype=torch.bool)
    # photo pixels whose centre (i + 0.5) lies inside the region
    rows = slice(int(np.ceil(y0 - 0.5)), int(np.floor(y1 - 0.5)) + 1)
    inside[rows, int(np.ceil(x0 - 0.5)) : int(np.floor(x1 - 0.5)) + 1] = True
    assert torch.equal(mask, inside)
    # inside, the value is the input column of that photo pixel
    sx = geo.scale[1]
    for x in (int(x0) + 2, 200, int(x1) - 3):
        col = (x + 0.5) * sx - geo.crop[1] - 0.5
        assert float(out[150, x]) == pytest.approx(min(max(col, 0), 223) / 223, abs=1e-4)


def test_display_size_keeps_the_aspect_ratio() -> None:
    assert display_size((376, 499), 1024) == (376, 499)
    assert display_size((4000, 3000), 1000) == (1000, 750)
    assert display_size((10, 5000), 1000) == (2, 1000)


def test_decode_image_reads_an_upload_as_it_reads_a_file(tmp_path: Path) -> None:
    from cnnlab.errors import DataError
    from cnnlab.images import decode_image, pil_to_tensor

    data = _ramp_photo(90, 120)
    path = tmp_path / "p.png"
    path.write_bytes(data)
    for size in (None, (28, 28)):
        same = pil_to_tensor(decode_image(io.BytesIO(data), size=size))
        assert torch.equal(same, pil_to_tensor(decode_image(path, size=size)))
    with pytest.raises(DataError, match=r"^image data: empty file"):
        decode_image(io.BytesIO(b""))
    with pytest.raises(DataError, match=r"^image data: not an image"):
        decode_image(io.BytesIO(b"hello"))
