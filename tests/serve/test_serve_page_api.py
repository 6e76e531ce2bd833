"""Issue 22, the API behind the page: example photos of the run's validation split, one colour scale
across classes (the map times the class's probability), a notice for a photo below the model's input."""

from __future__ import annotations

import base64
import io
from typing import Any

from _serve_helpers import png_bytes
from PIL import Image

from cnnlab.serve.examples import small_photo_notice


def _pixels(uri: str) -> Any:
    import numpy as np

    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
        return np.asarray(im.convert("RGBA"))


def test_examples_are_validation_photos_of_every_class(client: Any) -> None:
    got = client.get("/api/examples").json()["examples"]
    classes = client.get("/api/info").json()["classes"]
    assert 1 <= len(got) <= 8
    assert len({e["class"] for e in got}) == len(got)  # round-robin over the classes: one each here
    for e in got:
        assert e["class"] in classes and e["image"].startswith("data:image/")
        with Image.open(io.BytesIO(base64.b64decode(e["image"].split(",", 1)[1]))) as im:
            assert im.size == (28, 28)  # the run's own input size


def test_probability_scale_fades_an_unlikely_class(client: Any, photo: bytes) -> None:
    files = {"file": ("p.png", photo, "image/png")}
    own = client.post("/api/explain", files=files).json()  # the predicted class of a barely trained run
    scaled = client.post("/api/explain", files=files, data={"scale": "probability"}).json()
    assert own["scale"] == "own" and scaled["scale"] == "probability" and own["probability"] < 0.9
    assert own["target"] == scaled["target"]
    # jet: the hotter the map, the redder; times a probability < 1, the hot part cools
    a, b = _pixels(own["heatmap"]), _pixels(scaled["heatmap"])
    assert a.shape == b.shape and a[..., 0].astype(int).sum() > 0
    assert b[..., 0].astype(int).sum() < a[..., 0].astype(int).sum()
    bad = client.post("/api/explain", files=files, data={"scale": "loud"})
    assert bad.status_code == 422 and "scale" in bad.text


def test_a_photo_below_the_input_size_gets_a_notice(client: Any) -> None:
    tiny = client.post("/api/explain", files={"file": ("t.png", png_bytes(1, 1), "image/png")}).json()
    assert "1×1 px, smaller than the model's 28×28 input" in tiny["notice"]
    big = client.post("/api/explain", files={"file": ("b.png", png_bytes(64, 48), "image/png")}).json()
    assert big["notice"] is None
    assert small_photo_notice((224, 100), (3, 224, 224)) is not None
    assert small_photo_notice((300, 224), (3, 224, 224)) is None
