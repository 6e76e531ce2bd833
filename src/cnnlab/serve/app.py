"""The web app of ``cnnlab serve``: one static page at ``/`` and a JSON API beside it.

``GET /api/info`` (model, classes, input size, explorer layers, CAM methods), ``POST /api/predict``,
``POST /api/explain``, ``POST /api/features`` and ``POST /api/unit`` (multipart: the photo in ``file``
plus small form fields); the OpenAPI schema is at ``/openapi.json``. The model is loaded once
(:class:`~cnnlab.serve.engine.Engine`) and used under a lock. Every error is JSON ``{"detail": ...}``:
413 for a body over the cap or an image over the pixel budget, 415 for what is not an image, 422 for a
missing or malformed field, 400 for a value the model refuses (an unknown layer or class), 503 with
``Retry-After`` when as many photos as the memory budget allows are being decoded, 500 with no
traceback for a bug (the traceback goes to the server log); ``/openapi.json`` documents each. No request
names a file on the server; the page loads nothing from another host (a Content-Security-Policy says so
to the browser).
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations, which name values
# local to create_app (the CAM registry), so they must be evaluated where the routes are defined.
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import ArgumentError, CnnlabError
from ..values import check_number
from . import schemas
from .engine import Engine
from .examples import small_photo_notice, validation_examples
from .render import heatmap_png, overlay_jpeg, tiles
from .uploads import ACCEPTED, FORM_OVERHEAD, BodyLimit, Photo, read_photo

if TYPE_CHECKING:
    from ..source import ModelSource

__all__ = ["create_app"]

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("cnnlab.serve")
MB = 1024 * 1024
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
PhotoFile = Annotated[UploadFile, File(description="the photo (JPEG, PNG, WebP, BMP, GIF or TIFF)")]


def _rounded(values: Any, digits: int = 2) -> list[float]:
    return [round(float(v), digits) for v in values]


def _layer_dict(stage: Any) -> dict[str, Any]:
    return {"name": stage.name, "type": stage.type, "shape": list(stage.shape),
            "receptive_field": list(stage.rf), "jump": _rounded(stage.jump, 4),
            "offset": _rounded(stage.offset, 4)}


def create_app(
    source: "str | os.PathLike[str] | ModelSource",
    *,
    max_upload_mb: float = 10,
    display_max: int = 1024,
) -> FastAPI:
    """The FastAPI app serving one model.

    Args:
        source: Anything :func:`cnnlab.source.resolve_model` accepts (a run folder first of all), or a
            :class:`~cnnlab.source.ModelSource` already resolved.
        max_upload_mb: Largest photo accepted, in MB (2**20 bytes).
        display_max: Longest side, in pixels, of the heatmaps drawn on the photo (its aspect ratio kept).

    Returns:
        The app (serve it with uvicorn: ``cnnlab serve``).
    """
    from ..interpret.cam import CAM_METHODS
    from ..source import ModelSource, resolve_model

    check_number(max_upload_mb, "max_upload_mb", low=0, low_open=True, example="10")
    if display_max < 16:
        raise ArgumentError("must be at least 16 pixels, e.g. 1024", param="display_max")
    src = source if isinstance(source, ModelSource) else resolve_model(source)
    engine = Engine(src)
    max_bytes = int(max_upload_mb * MB)
    limit_text = f"{max_upload_mb:g} MB"
    app = FastAPI(title="cnnlab serve", summary=f"Predictions and explanations of {src.label}",
                  docs_url=None, redoc_url=None)  # the docs pages would load scripts from a CDN
    app.state.engine = engine
    app.add_middleware(BodyLimit, max_bytes=max_bytes + FORM_OVERHEAD, what=limit_text)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(CnnlabError)
    async def model_refused(request: Request, exc: CnnlabError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        detail = f"internal error ({type(exc).__name__}); the server log has the details"
        return JSONResponse({"detail": detail}, status_code=500)

    def photo_of(file: UploadFile) -> Photo:
        if file.size is not None and file.size > max_bytes:
            raise HTTPException(413, f"upload too large: the limit is {limit_text}; send a smaller image")
        return read_photo(file.file, src.preprocess, budget=engine.budget, display_max=display_max,
                          slots=engine.slots)

    def predictions(probs: Any, top_k: int) -> list[dict[str, Any]]:
        values, index = probs[0].topk(min(top_k, probs.shape[1]))
        return [{"index": int(i), "class": src.classes[int(i)], "probability": round(float(v), 6)}
                for v, i in zip(values, index, strict=True)]

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/info", response_model=schemas.Info)
    def info() -> dict[str, Any]:
        """The model, its classes and input size, the explorer's layers, the CAM methods, upload limits."""
        s = engine.summary
        return {
            "model": src.label, "learned": src.learned, "classes": src.classes,
            "input_size": list(src.image_size),
            "geometry": "resize" if src.preprocess.weights is None else "resize+crop",
            "methods": list(CAM_METHODS), "default_method": "gradcam", "cam_layer": engine.cam_layer,
            "layers": [_layer_dict(st) for st in engine.stages],
            "total_params": s.total_params, "trainable_params": s.trainable_params,
            "max_upload_bytes": max_bytes, "accepted_types": list(ACCEPTED.values()), "notices": src.notices,
        }

    @app.post("/api/predict", response_model=schemas.PredictResponse, responses=schemas.ERRORS)
    def predict(file: PhotoFile, top_k: Annotated[int, Form(ge=1, le=1000)] = 5) -> dict[str, Any]:
        """Top-k classes of the photo."""
        photo = photo_of(file)
        probs = engine.probabilities(engine.logits(photo))
        return {"size": list(photo.size), "predictions": predictions(probs, top_k)}

    @app.post("/api/explain", response_model=schemas.ExplainResponse, responses=schemas.ERRORS)
    def explain(
        file: PhotoFile,
        method: Annotated[str, Form(description=f"one of {', '.join(CAM_METHODS)}")] = "gradcam",
        target: Annotated[str, Form(description="class name or index; empty: the predicted class")] = "",
        layer: Annotated[str, Form(description="auto, a dotted name or Type:index")] = "auto",
        top_k: Annotated[int, Form(ge=1, le=1000)] = 5,
        overlay: Annotated[bool, Form(description="also the map blended over the photo (JPEG)")] = False,
        scale: Annotated[Literal["own", "probability"], Form(
            description="own: the map stretched to its max; probability: times the class's probability, one "
                        "colour scale for every class (a class at 2% is faint)")] = "own",
    ) -> dict[str, Any]:
        """Top-k classes and a class activation map on the original photo (its own size and aspect)."""
        photo = photo_of(file)
        res = engine.explain(photo, method=method, target=engine.target(target), layer=layer)
        probs = engine.probabilities(res.logits)
        shown = tuple(photo.display.shape[1:])
        values, mask = photo.geometry.map_onto(res.maps[0], shown)  # type: ignore[arg-type]
        peak = int((values * mask).flatten().argmax())
        scale_x, scale_y = photo.size[0] / shown[1], photo.size[1] / shown[0]
        t = int(res.targets[0])
        if scale == "probability":
            values = values * float(probs[0, t])
        return {
            "size": list(photo.size), "predictions": predictions(probs, top_k), "method": res.method,
            "layer": res.layer, "target": t, "target_class": src.classes[t],
            "probability": round(float(probs[0, t]), 6), "region": _rounded(photo.geometry.region()),
            "peak": _rounded(((peak % shown[1] + 0.5) * scale_x, (peak // shown[1] + 0.5) * scale_y)),
            "heatmap_size": [shown[1], shown[0]], "heatmap": heatmap_png(values, mask),
            "overlay": overlay_jpeg(photo.display, values, mask) if overlay else None,
            "scale": scale, "notice": small_photo_notice(photo.size, src.image_size),
        }

    @app.get("/api/examples", response_model=schemas.ExamplesResponse)
    def examples() -> dict[str, Any]:
        """Photos of the run's validation split to try (none for a model that is not a run folder)."""
        if not hasattr(app.state, "examples"):
            with engine.lock:  # decoded once
                app.state.examples = validation_examples(src)
        return {"examples": app.state.examples}

    @app.post("/api/features", response_model=schemas.FeaturesResponse, responses=schemas.ERRORS)
    def features(
        file: PhotoFile,
        layer: Annotated[str, Form(description="one explorer layer; empty: every one")] = "",
        channels: Annotated[int, Form(ge=1, le=256, description="channels per layer, strongest first")] = 8,
    ) -> dict[str, Any]:
        """Feature maps of the explorer's layers for the photo, the strongest channels of each."""
        photo = photo_of(file)
        stages = [engine.stage(layer)] if layer else engine.stages
        acts = engine.activations(photo, [s.name for s in stages])
        out = []
        for st in stages:
            maps = acts[st.name]
            means = maps.mean((1, 2))
            order = means.argsort(descending=True)[:channels]
            pics = tiles(st.name, maps[order])
            chans = [{"index": int(c), "mean": round(float(means[c]), 5),
                      "max": round(float(maps[c].max()), 5), "dead": bool(maps[c].max() <= 0), "image": pic}
                     for c, pic in zip(order, pics, strict=True)]
            out.append({**_layer_dict(st), "channels": chans})
        return {"size": list(photo.size), "region": _rounded(photo.geometry.region()), "stages": out}

    @app.post("/api/unit", response_model=schemas.UnitResponse, responses=schemas.ERRORS)
    def unit(
        file: PhotoFile,
        layer: Annotated[str, Form(description="an explorer layer")],
        channel: Annotated[int, Form(ge=0)],
        row: Annotated[int, Form(ge=0)],
        col: Annotated[int, Form(ge=0)],
        inputs: Annotated[int, Form(ge=1, le=64, description="strongest input channels to list")] = 6,
    ) -> dict[str, Any]:
        """One unit of a feature map: its receptive field on the input and the photo, its strongest inputs."""
        photo = photo_of(file)
        stage = engine.stage(layer)
        got = engine.unit(photo, layer, channel, row, col)
        order = got.contributions.abs().argsort(descending=True)[:inputs]
        pics = tiles(f"input of {layer}", got.inputs[order])
        field, box = stage.field(row, col), stage.box(row, col)
        i = engine.stages.index(stage)
        before = engine.stages[i - 1] if i else None
        if before is not None and tuple(got.inputs.shape) == before.shape:
            fed_by = before.name
        else:
            fed_by = "the image" if got.inputs.shape == photo.x.shape[1:] else f"the input of {layer}"
        return {
            "layer": layer, "channel": channel, "row": row, "col": col, "activation": round(got.value, 6),
            "receptive_field": list(stage.rf), "field_input": vars(field), "box_input": vars(box),
            "box_size": list(box.size),
            "box": _rounded(photo.geometry.to_original(box.top, box.left, box.bottom + 1, box.right + 1)),
            "inputs_from": fed_by,
            "strongest_inputs": [{"channel": int(c), "contribution": round(float(got.contributions[c]), 6),
                                  "image": pic} for c, pic in zip(order, pics, strict=True)],
        }

    return app
