"""The JSON API (FastAPI TestClient): what it answers, and that every error is JSON and names the fix."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _serve_helpers import png_bytes


def _decode(uri: str) -> Any:
    from PIL import Image

    head, data = uri.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_info_lists_the_runs_classes_and_its_summarys_layers(client: Any, sample_run: Path) -> None:
    from cnnlab.summary import summarize
    from cnnlab.train import load_run

    run = load_run(sample_run)
    info = client.get("/api/info").json()
    assert info["classes"] == run.classes and len(info["classes"]) == 10
    assert info["input_size"] == [1, 28, 28] and info["geometry"] == "resize" and info["learned"]
    from cnnlab.interpret.cam import CAM_METHODS

    assert info["methods"] == list(CAM_METHODS)
    summary = summarize(run.model, run.image_size)
    assert [item["name"] for item in info["layers"]] == [f"features.block{i}" for i in (1, 2, 3)]
    for layer in info["layers"]:
        rec = summary.layer(layer["name"])
        assert layer["receptive_field"] == list(rec.field.rf) and layer["jump"] == list(rec.field.jump)
        assert layer["shape"] == rec.output_shape


def test_predict_agrees_with_cnnlab_predict_on_the_same_file(client: Any, sample_run: Path, tmp_path: Path,
                                                             photo: bytes) -> None:
    from cnnlab.train import load_run
    from cnnlab.train.evaluate import predict

    path = tmp_path / "p.png"
    path.write_bytes(photo)
    expected = predict(load_run(sample_run), [path], top_k=3)[0].top_k
    got = client.post("/api/predict", files={"file": ("p.png", photo, "image/png")}, data={"top_k": 3}).json()
    assert got["size"] == [120, 90]
    assert [p["class"] for p in got["predictions"]] == [c for c, _ in expected]
    assert [p["probability"] for p in got["predictions"]] == pytest.approx([p for _, p in expected], abs=1e-5)


def test_explain_draws_the_heatmap_in_the_photos_frame(client: Any, sample_run: Path, photo: bytes) -> None:
    from cnnlab.interpret.cam import explain
    from cnnlab.source import resolve_model

    files = {"file": ("p.png", photo, "image/png")}
    r = client.post("/api/explain", files=files, data={"method": "gradcam++", "overlay": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "gradcam++" and body["size"] == [120, 90] and body["heatmap_size"] == [120, 90]
    heat, overlay = _decode(body["heatmap"]), _decode(body["overlay"])
    assert heat.size == (120, 90) and overlay.size == (120, 90) and overlay.format == "JPEG"
    assert np.asarray(heat.convert("RGBA"))[..., 3].min() == 255  # all of the photo is seen
    assert body["region"] == [0.0, 0.0, 120.0, 90.0]  # a run resizes the whole photo: all of it is seen
    src = resolve_model(sample_run)
    _, x = src.preprocess([io.BytesIO(photo)])
    cam = explain(src.model, x, method="gradcam++")
    assert body["target"] == int(cam.targets[0]) and body["target_class"] == src.classes[body["target"]]
    # The map on the photo is the map at input resolution resized to the photo (the run's geometry):
    # the server's peak is a maximum of F.interpolate's resize too.
    ref = torch.nn.functional.interpolate(cam.maps[None], size=(90, 120), mode="bilinear",
                                          align_corners=False)[0, 0]
    col, row = int(body["peak"][0]), int(body["peak"][1])
    assert float(ref[row, col]) == pytest.approx(float(ref.max()), abs=1e-4)


def test_target_by_name_and_unknown_values_are_400_naming_the_field(client: Any, photo: bytes) -> None:
    files = {"file": ("p.png", photo, "image/png")}
    classes = client.get("/api/info").json()["classes"]
    ok = client.post("/api/explain", files=files, data={"target": classes[3]}).json()
    assert ok["target"] == 3 and ok["target_class"] == classes[3]
    for data, word in (({"target": "zebra"}, "target"), ({"target": "10"}, "target"),
                       ({"method": "magic"}, "method"), ({"layer": "nope"}, "nope")):
        r = client.post("/api/explain", files=files, data=data)
        assert r.status_code == 400 and r.headers["content-type"] == "application/json", r.text
        assert word in r.json()["detail"]


def test_an_11_mb_upload_is_413_json(client: Any) -> None:
    r = client.post("/api/predict", files={"file": ("big.jpg", b"\xff" * (11 * 1024 * 1024), "image/jpeg")})
    assert r.status_code == 413 and r.headers["content-type"] == "application/json"
    assert "10 MB" in r.json()["detail"]


def _bomb() -> bytes:
    """A valid 20000 x 20000 1-bit PNG of about 50 KB (400 million pixels when decoded)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\x00" * (1 + 20000 // 8)
    idat = b"".join(z.compress(row * 500) for _ in range(40)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _spy_decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    from PIL import ImageFile

    loads: list[tuple[int, int]] = []
    real = ImageFile.ImageFile.load

    def load(self: Any) -> Any:
        loads.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return loads


def test_a_decompression_bomb_is_413_and_never_decoded(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _bomb()
    assert len(bomb) < 100_000
    loads = _spy_decodes(monkeypatch)
    r = client.post("/api/explain", files={"file": ("bomb.png", bomb, "image/png")})
    assert r.status_code == 413 and r.headers["content-type"] == "application/json"
    assert "20000x20000" in r.json()["detail"] or "400000000" in r.json()["detail"]
    assert loads == []  # not one pixel decoded


def test_the_pixel_budget_of_cnnlab_images_applies(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_MAX_IMAGE_PIXELS", "10000")
    loads = _spy_decodes(monkeypatch)
    r = client.post("/api/predict", files={"file": ("p.png", png_bytes(200, 100), "image/png")})
    assert r.status_code == 413 and "CNNLAB_MAX_IMAGE_PIXELS" in r.json()["detail"] and loads == []
    small = {"file": ("s.png", png_bytes(90, 100), "image/png")}
    assert client.post("/api/predict", files=small).status_code == 200


def test_a_text_file_is_415_naming_the_accepted_types(client: Any) -> None:
    r = client.post("/api/predict", files={"file": ("notes.txt", b"just some text\n" * 50, "text/plain")})
    assert r.status_code == 415 and r.headers["content-type"] == "application/json"
    detail = r.json()["detail"]
    assert all(t in detail for t in ("image/jpeg", "image/png", "image/webp"))


def test_a_missing_file_field_is_422_json(client: Any) -> None:
    for path in ("/api/predict", "/api/explain", "/api/features"):
        r = client.post(path, data={"method": "gradcam"})
        assert r.status_code == 422 and r.headers["content-type"] == "application/json"
        assert r.json()["detail"][0]["loc"] == ["body", "file"]


def test_a_damaged_image_is_400_json(client: Any, photo: bytes) -> None:
    r = client.post("/api/predict", files={"file": ("cut.png", photo[: len(photo) // 2], "image/png")})
    assert r.status_code == 400 and "cannot decode" in r.json()["detail"]
    assert "/tmp" not in r.text


def test_a_bug_is_a_json_500_without_a_traceback(client: Any, sample_app: Any, photo: bytes,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals at /srv/models/x.py")

    monkeypatch.setattr(sample_app.state.engine, "explain", broken)
    r = client.post("/api/explain", files={"file": ("p.png", photo, "image/png")})
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json() == {"detail": "internal error (RuntimeError); the server log has the details"}
    assert "Traceback" not in r.text and "/srv" not in r.text


def test_no_request_names_a_server_path(client: Any) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/api/info", "/api/predict", "/api/explain", "/api/features", "/api/unit",
                                    "/api/examples"}
    for name, comp in schema["components"]["schemas"].items():
        if name.startswith("Body_"):
            props = comp["properties"]
            assert props["file"].get("contentMediaType") == "application/octet-stream" or props["file"].get(
                "format") == "binary"  # the upload itself, never a name of a file
            assert not {"path", "filename", "dir"} & set(props)
    for bad in ("/static/../pyproject.toml", "/static/%2e%2e/app.py", "/static/..%2f..%2fapp.py",
                "/etc/passwd"):
        r = client.get(bad)
        assert r.status_code == 404 and "app.py" not in r.text
    r = client.post("/api/predict", data={"file": "/etc/passwd"})  # a path where the photo should be
    assert r.status_code == 422


def test_the_page_loads_nothing_from_elsewhere(client: Any) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    static = Path(__file__).resolve().parents[2] / "src" / "cnnlab" / "serve" / "static"
    for f in static.iterdir():
        text = f.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f.name
        assert client.get(f"/static/{f.name}").status_code == 200
    assert client.get("/docs").status_code == 404  # Swagger UI would load scripts from a CDN


def test_exif_orientation_is_applied_to_the_photos_frame(client: Any) -> None:
    from PIL import Image

    stored = Image.new("RGB", (120, 80), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", exif=exif)
    body = client.post("/api/explain", files={"file": ("r.jpg", buf.getvalue(), "image/jpeg")}).json()
    assert body["size"] == [80, 120] and _decode(body["heatmap"]).size == (80, 120)


def test_features_and_unit_describe_every_stage(client: Any, photo: bytes) -> None:
    files = {"file": ("p.png", photo, "image/png")}
    feats = client.post("/api/features", files=files, data={"channels": 4}).json()
    assert [s["name"] for s in feats["stages"]] == ["features.block1", "features.block2", "features.block3"]
    for st in feats["stages"]:
        assert len(st["channels"]) == 4
        assert _decode(st["channels"][0]["image"]).size == (st["shape"][2], st["shape"][1])
        means = [c["mean"] for c in st["channels"]]
        assert means == sorted(means, reverse=True)
    unit = {"layer": "features.block2", "channel": 1, "row": 0, "col": 4}
    r = client.post("/api/unit", files=files, data=unit)
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["inputs_from"] == "features.block1" and len(u["strongest_inputs"]) == 6
    assert u["box_size"] == [u["box_input"]["bottom"] - u["box_input"]["top"] + 1,
                             u["box_input"]["right"] - u["box_input"]["left"] + 1]
    bad = client.post("/api/unit", files=files, data={**unit, "channel": 999})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("channel 999")


def test_concurrent_requests_give_the_answers_of_sequential_ones(sample_app: Any, photo: bytes) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    photos = [png_bytes(60 + 7 * i, 50 + 5 * i, seed=i) for i in range(6)]
    calls = [("/api/explain", {"method": m}) for m in ("gradcam", "layercam", "gradcam++")]
    calls += [("/api/unit", {"layer": "features.block3", "channel": 2, "row": 1, "col": 1}),
              ("/api/features", {"channels": 2})]
    jobs = [(path, data, p) for p in photos for path, data in calls]

    def call(job: tuple[str, dict[str, Any], bytes]) -> Any:
        path, data, p = job
        with TestClient(sample_app) as c:
            r = c.post(path, files={"file": ("p.png", p, "image/png")}, data=data)
            assert r.status_code == 200, r.text
            return r.json()

    sequential = [call(j) for j in jobs]
    torch.manual_seed(0)
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(call, jobs))
    assert concurrent == sequential


@pytest.mark.slow
def test_pretrained_weights_show_the_centre_crop_the_model_sees() -> None:
    from fastapi.testclient import TestClient

    from cnnlab.serve import create_app
    from cnnlab.serve.geometry import geometry_of
    from cnnlab.source import resolve_model

    src = resolve_model("efficientnet_lite0")
    with TestClient(create_app(src)) as c:
        info = c.get("/api/info").json()
        assert info["geometry"] == "resize+crop" and len(info["classes"]) == 1000
        body = c.post("/api/explain", files={"file": ("w.png", png_bytes(400, 300), "image/png")}).json()
    x0, y0, x1, y1 = body["region"]
    assert body["size"] == [400, 300] and body["region"] == pytest.approx(
        geometry_of(src.preprocess, (300, 400)).region(), abs=0.01)
    assert x0 > 40 and x1 < 360 and y0 >= 0 and y1 <= 300  # the sides the crop cuts off
    alpha = torch.from_numpy(np.asarray(_decode(body["heatmap"]).convert("RGBA"))[..., 3].copy())
    assert body["overlay"] is None  # only when asked
    assert int(alpha[:, : int(x0) - 1].max()) == 0 and int(alpha[:, int(x1) + 1 :].max()) == 0
    assert int(alpha[int(y0) + 1 : int(y1) - 1, int(x0) + 1 : int(x1) - 1].min()) == 255
