"""The Pandera contract of a validated pixel frame."""

import numpy as np
import pandera.pandas as pa
from pandera.typing import Series


class ValidatedSkinPixels(pa.DataFrameModel):
    """One row per usable pixel: its colour in B, G, R order and whether it is skin."""

    batch: Series[str] = pa.Field(description="The batch (landed file) the pixel came from")
    line_number: Series[np.int64] = pa.Field(ge=1, description="Line of the pixel in its source file")
    B: Series[np.uint8] = pa.Field(ge=0, le=255, description="Blue channel")
    G: Series[np.uint8] = pa.Field(ge=0, le=255, description="Green channel")
    R: Series[np.uint8] = pa.Field(ge=0, le=255, description="Red channel")
    is_skin: Series[bool] = pa.Field(description="True for skin (UCI label 1), False for non-skin (label 2)")

    class Config:
        strict = True
        coerce = False
