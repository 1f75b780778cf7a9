"""The prediction service: the serving champion over HTTP.

    GET  /health    the champion version being served (loaded from the blob store)
    POST /predict   {"pixels": [{"B": 0-255, "G": 0-255, "R": 0-255}, ...]} -> labels, P(skin)
    POST /segment   multipart field `image` (PNG, JPEG, ...) -> the skin mask as PNG

Limits: at most `MAX_PIXELS_PER_REQUEST` pixels per /predict (more: 422 naming `pixels`), a
request body of at most `MAX_BODY_BYTES` (more: 413), images of at most `MAX_IMAGE_PIXELS`
pixels (more: 413). Invalid input is a 422 whose `detail[].loc` names the field, e.g.
["body", "pixels", 3, "R"] (the first `MAX_ERRORS_SHOWN`; `errors_not_shown` counts the rest).
No champion yet, a champion that fails its integrity check, or a store that cannot be read before
any champion was loaded: 503.

Run: `skinseg serve` or `uvicorn --factory skinseg_assets.service.app:create_app`.
"""

import math
import threading
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from skinseg_assets.pixels.images import MAX_IMAGE_PIXELS, ImageError, ImageTooLargeError
from skinseg_assets.resources.champion_store import ChampionStore
from skinseg_assets.service.scoring import (
    NO_SERVABLE_CHAMPION,
    ChampionSource,
    ServingModel,
    blob_store_from_environment,
    segment_image_bytes,
)

MAX_PIXELS_PER_REQUEST = 100_000
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_ERRORS_SHOWN = 20  # a 422 lists the first invalid fields, and counts the rest

Channel = Annotated[int, Field(ge=0, le=255, strict=True, description="Channel value, a whole number 0-255")]


class Pixel(BaseModel):
    """One pixel's colour; note the order the UCI data and the model use: B, G, R."""

    model_config = ConfigDict(extra="forbid")
    B: Channel
    G: Channel
    R: Channel


def predict_request_model(max_pixels: int) -> type[BaseModel]:
    """The /predict body: 1 to `max_pixels` pixels."""
    return create_model(
        "PredictRequest",
        pixels=(list[Pixel], Field(min_length=1, max_length=max_pixels, description="Pixels to score, B, G, R each")),
    )


class PredictResponse(BaseModel):
    model_version: int
    labels: list[str] = Field(description='"skin" or "non-skin", per pixel, in request order')
    skin_probability: list[float]


class Health(BaseModel):
    status: str
    model_version: int
    model_sha256: str
    estimator: str
    promoted_at: str
    segment_scorer: str = Field(description='"lookup-table" when the champion\'s table is compiled, else "model"')


def readable_error(error: dict) -> dict:
    """A validation error as JSON can carry it, and small: a non-finite number (1e309, NaN) as
    text; a list (the whole pixel list, when its length is wrong) by its length."""
    value = error.get("input")
    if isinstance(value, float) and not math.isfinite(value):
        return {**error, "input": str(value)}
    if isinstance(value, list):
        return {**error, "input": f"a list of {len(value)} items"}
    return error


async def validation_error_response(request: Request, error: RequestValidationError) -> JSONResponse:
    errors = error.errors()
    body: dict = {"detail": jsonable_encoder([readable_error(e) for e in errors[:MAX_ERRORS_SHOWN]])}
    if len(errors) > MAX_ERRORS_SHOWN:
        body["errors_not_shown"] = len(errors) - MAX_ERRORS_SHOWN
    return JSONResponse(status_code=422, content=body)


def create_app(source: ChampionSource | None = None, max_pixels_per_request: int = MAX_PIXELS_PER_REQUEST) -> FastAPI:
    """The service; by default it follows the champion in the deployment's blob store."""
    PredictRequest = predict_request_model(max_pixels_per_request)  # noqa: N806 (a class)
    app = FastAPI(
        title="skinseg",
        description="Skin segmentation by the production champion (UCI Skin Segmentation, pixels in B, G, R order).",
        max_body_size=MAX_BODY_BYTES,
    )
    app.add_exception_handler(RequestValidationError, validation_error_response)
    state = {"source": source}
    starting = threading.Lock()  # concurrent first requests make one source, not one each

    def serving() -> ServingModel:
        try:
            if state["source"] is None:
                with starting:
                    if state["source"] is None:
                        state["source"] = ChampionSource(ChampionStore(blob_store_from_environment()))
            return state["source"].get()
        except NO_SERVABLE_CHAMPION as error:
            raise HTTPException(status_code=503, detail=str(error)) from None

    @app.get("/health")
    def health() -> Health:
        champion = serving()
        return Health(
            status="ok",
            model_version=champion.version,
            model_sha256=champion.manifest.sha256,
            estimator=champion.manifest.estimator,
            promoted_at=champion.manifest.promoted_at,
            segment_scorer=champion.scorer,
        )

    @app.post("/predict")
    def predict(request: PredictRequest) -> PredictResponse:  # type: ignore[valid-type]
        champion = serving()
        bgr = np.array([(pixel.B, pixel.G, pixel.R) for pixel in request.pixels], dtype=np.uint8)
        is_skin, probability = champion.predict(bgr)
        return PredictResponse(
            model_version=champion.version,
            labels=["skin" if skin else "non-skin" for skin in is_skin],
            skin_probability=[round(float(p), 6) for p in probability],
        )

    @app.post("/segment", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    def segment(
        image: Annotated[UploadFile, File(description="A photograph (PNG, JPEG, ...); RGB channel order")],
        output: Annotated[str, Query(pattern="^(mask|overlay)$", description="mask (default) or overlay")] = "mask",
    ) -> Response:
        champion = serving()
        try:
            result = segment_image_bytes(champion, image.file.read(), max_pixels=MAX_IMAGE_PIXELS)
        except ImageTooLargeError as error:
            raise HTTPException(status_code=413, detail=f"image: {error}") from None
        except ImageError as error:
            raise RequestValidationError(
                [{"loc": ("body", "image"), "msg": str(error), "type": "value_error", "input": image.filename}]
            ) from None
        return Response(
            content=result.mask_png() if output == "mask" else result.overlay_png(),
            media_type="image/png",
            headers={
                "X-Skinseg-Model-Version": str(champion.version),
                "X-Skinseg-Skin-Share": f"{result.skin_share:.6f}",
                "X-Skinseg-Scorer": champion.scorer,
            },
        )

    return app
