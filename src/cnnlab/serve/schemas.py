"""The JSON the API returns (pydantic models: they are the OpenAPI schema at ``/openapi.json``).

Coordinates on the photo are in pixels of the original photo, EXIF orientation applied, x to the
right and y down from its top-left corner (edges: pixel ``i`` spans ``[i, i + 1)``). Coordinates on
the model's input are in input pixels (rows and cols, inclusive).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "ERRORS",
    "Channel",
    "Error",
    "Example",
    "ExamplesResponse",
    "ExplainResponse",
    "FeaturesResponse",
    "Info",
    "InputBox",
    "InputChannel",
    "Layer",
    "PredictResponse",
    "Prediction",
    "StageMaps",
    "UnitResponse",
]


class Layer(BaseModel):
    """A layer of the explorer (a conv stage) and the geometry of its units."""

    name: str
    type: str
    shape: list[int] = Field(description="output (channels, rows, cols)")
    receptive_field: list[int] = Field(description="(rows, cols) in input pixels, as `cnnlab summary` says")
    jump: list[float] = Field(description="input pixels between neighbouring units (rows, cols)")
    offset: list[float] = Field(description="input (row, col) where unit (0, 0)'s field starts (<0: padding)")


class Info(BaseModel):
    """What the server serves."""

    model: str = Field(description="the source, as given to `cnnlab serve`")
    learned: bool = Field(description="false: random weights, nothing learned to explain")
    classes: list[str]
    input_size: list[int] = Field(description="(channels, rows, cols) the model takes")
    geometry: str = Field(description="'resize' (the photo resized to the input) or 'resize+crop'")
    methods: list[str] = Field(description="CAM methods (the registry of cnnlab.interpret.cam)")
    default_method: str
    cam_layer: str = Field(description="the layer CAM methods use by default")
    layers: list[Layer]
    total_params: int
    trainable_params: int
    max_upload_bytes: int
    accepted_types: list[str]
    notices: list[str]


class Prediction(BaseModel):
    index: int
    label: str = Field(alias="class")
    probability: float

    model_config = {"populate_by_name": True}


class PredictResponse(BaseModel):
    size: list[int] = Field(description="(width, height) of the photo")
    predictions: list[Prediction]


class ExplainResponse(PredictResponse):
    method: str
    layer: str
    target: int = Field(description="the class explained")
    target_class: str
    probability: float = Field(description="probability of the class explained")
    region: list[float] = Field(description="(x0, y0, x1, y1): the part of the photo the model sees")
    peak: list[float] = Field(description="(x, y) of the heatmap's maximum on the photo")
    heatmap_size: list[int] = Field(description="(width, height) of the heatmap images (the photo's aspect)")
    heatmap: str = Field(description="PNG data URI: the colour-mapped map, transparent where unseen")
    overlay: str | None = Field(description="JPEG data URI: the map blended over the photo (when asked)")
    scale: str = Field(description="own (the map's own max) or probability (times the class's probability)")
    notice: str | None = Field(description="a photo smaller than the model's input says so here")


class Example(BaseModel):
    name: str
    class_: str = Field(alias="class")
    image: str = Field(description="data URI of the photo")


class ExamplesResponse(BaseModel):
    examples: list[Example]


class Channel(BaseModel):
    index: int
    mean: float
    max: float
    dead: bool = Field(description="<= 0 everywhere")
    image: str = Field(description="PNG data URI, the channel scaled to its own range")


class StageMaps(Layer):
    channels: list[Channel] = Field(description="the strongest channels by mean activation")


class FeaturesResponse(BaseModel):
    size: list[int]
    region: list[float]
    stages: list[StageMaps]


class InputBox(BaseModel):
    top: int
    left: int
    bottom: int
    right: int


class InputChannel(BaseModel):
    channel: int
    contribution: float = Field(description="gradient x input of the unit, summed over the channel")
    image: str


class UnitResponse(BaseModel):
    layer: str
    channel: int
    row: int
    col: int
    activation: float
    receptive_field: list[int] = Field(description="the layer's field (rows, cols) in input pixels")
    field_input: InputBox = Field(description="the unit's whole field on the input (may pass the border)")
    box_input: InputBox = Field(description="the field clipped to the input: the pixels the unit sees")
    box_size: list[int] = Field(description="(rows, cols) of box_input")
    box: list[float] = Field(description="(x0, y0, x1, y1): box_input on the photo")
    inputs_from: str = Field(description="what feeds the layer: the stage before it, or its own input")
    strongest_inputs: list[InputChannel]


class Error(BaseModel):
    """Every error the API answers: one line saying what is wrong and what to send instead."""

    detail: str


#: The errors every upload route may answer (422, a missing or malformed field, FastAPI documents itself).
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": Error, "description": "a value the model refuses (an unknown layer or class), or an "
                                         "image that cannot be decoded"},
    413: {"model": Error, "description": "an upload over the size limit, or an image over the pixel budget "
                                         "(CNNLAB_MAX_IMAGE_PIXELS)"},
    415: {"model": Error, "description": "not an image, or an image format the server does not take"},
    503: {"model": Error, "description": "busy: as many photos as the memory budget allows are being "
                                         "decoded; retry after the seconds the Retry-After header gives",
          "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}},
}
