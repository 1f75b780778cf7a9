"""A skin classifier compiled into a lookup table over every colour, and scorers built on it.

The table has one entry per (B, G, R) colour (256**3 = 16,777,216), at index
`B << 16 | G << 8 | R` (`colours.colour_index`). Scoring a pixel is then one memory read
instead of a model evaluation. Entries hold the model's decision (`model.model_is_skin`).

Two forms of the same table: a bool array [B, G, R] (16 MiB; easy to inspect and test) and its
packed bits (2 MiB; `pack_table`), which stays in the CPU cache and is what the service and the
benchmark score with. Every scorer here takes either.
"""

import io
import time
from dataclasses import dataclass

import numpy as np

from skinseg_assets.pixels.colours import colour_index, colours_of_keys
from skinseg_assets.pixels.model import model_is_skin

COLOURS = 1 << 24
LUT_SHAPE = (256, 256, 256)
COMPILE_CHUNK = 1 << 20
LUT_ARRAY = "is_skin_bits_little_endian"


@dataclass(frozen=True)
class CompiledLut:
    table: np.ndarray  # bool, shape LUT_SHAPE, indexed [B, G, R]
    compile_seconds: float

    @property
    def skin_colours(self) -> int:
        return int(np.count_nonzero(self.table))


def keys_are_skin(model, keys: np.ndarray, chunk: int = COMPILE_CHUNK) -> np.ndarray:
    """The model's decision for each colour key, predicted a chunk of keys at a time (bounded memory)."""
    decisions = np.empty(len(keys), dtype=bool)
    for start in range(0, len(keys), chunk):
        decisions[start : start + chunk] = model_is_skin(model, colours_of_keys(keys[start : start + chunk]))
    return decisions


def compile_lut(model, chunk: int = COMPILE_CHUNK) -> CompiledLut:
    """Evaluate the model on all 16.7M colours, a chunk at a time, into a boolean table."""
    started = time.perf_counter()
    flat = keys_are_skin(model, np.arange(COLOURS, dtype=np.uint32), chunk)
    return CompiledLut(table=flat.reshape(LUT_SHAPE), compile_seconds=time.perf_counter() - started)


def pack_table(table: np.ndarray) -> np.ndarray:
    """The table as 2 MiB of bits (little-endian within each byte): small enough to stay in cache."""
    if table.shape != LUT_SHAPE or table.dtype != bool:
        raise ValueError(f"a lookup table is a bool array of shape {LUT_SHAPE}, got {table.dtype} {table.shape}")
    return np.packbits(table.reshape(-1), bitorder="little")


def lookup(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The decisions at colour indices, from a bool table or its packed bits (`pack_table`)."""
    if table.dtype == bool:
        return np.take(table.reshape(-1), index, mode="clip")  # indices < 2**24 by construction
    if table.shape != (COLOURS // 8,):
        raise ValueError(f"expected a bool table of shape {LUT_SHAPE} or {COLOURS // 8} bytes of packed bits")
    byte = np.take(table, index >> 3, mode="clip")
    np.right_shift(byte, (index & 7).astype(np.uint8), out=byte)
    np.bitwise_and(byte, 1, out=byte)
    return byte.view(bool)


def lut_is_skin(table: np.ndarray, bgr: np.ndarray) -> np.ndarray:
    """The table's decision for an (N, 3) array of colours in B, G, R order."""
    bgr = np.asarray(bgr, dtype=np.uint8)
    return lookup(table, colour_index(bgr[:, 0], bgr[:, 1], bgr[:, 2]))


def rgb_image(image: np.ndarray) -> np.ndarray:
    """The image as an array, if it is RGB uint8 (H, W, 3); anything else is refused, not cast."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}")
    return image


def block_keys(image: np.ndarray, top: int, rows: int) -> np.ndarray:
    """Colour keys of a block of rows of an RGB image (images are R, G, B; keys are B << 16 | G << 8 | R)."""
    block = image[top : top + rows]
    return colour_index(block[..., 2], block[..., 1], block[..., 0])


def segment_rgb(table: np.ndarray, image: np.ndarray, rows_per_chunk: int = 512) -> np.ndarray:
    """Skin mask (H, W) of an RGB image (H, W, 3), by a bool table or its packed bits.

    Rows are processed in chunks so that a large image needs little temporary memory.
    """
    image = rgb_image(image)
    mask = np.empty(image.shape[:2], dtype=bool)
    for top in range(0, image.shape[0], rows_per_chunk):
        mask[top : top + rows_per_chunk] = lookup(table, block_keys(image, top, rows_per_chunk))
    return mask


def segment_rgb_with_model(model, image: np.ndarray, rows_per_chunk: int = 512) -> np.ndarray:
    """Skin mask of an RGB image straight from the model (each distinct colour predicted once).

    The fallback when no table is available; gives the same decisions as `segment_rgb`. Rows and
    colours are taken in blocks: a 50-megapixel photo of random colours peaks at about 400 MB, not gigabytes.
    """
    image = rgb_image(image)
    tops = range(0, image.shape[0], rows_per_chunk)
    distinct = np.unique(
        np.concatenate([np.unique(block_keys(image, top, rows_per_chunk)) for top in tops] or [np.empty(0, np.uint32)])
    )
    is_skin = keys_are_skin(model, distinct)
    mask = np.empty(image.shape[:2], dtype=bool)
    for top in tops:
        mask[top : top + rows_per_chunk] = is_skin[np.searchsorted(distinct, block_keys(image, top, rows_per_chunk))]
    return mask


def random_colours(seed: int, count: int) -> np.ndarray:
    """(count, 3) B, G, R colours drawn uniformly from all 2**24; the same seed draws the same ones."""
    return colours_of_keys(np.random.default_rng(seed).integers(0, COLOURS, count, dtype=np.uint32))


def disagreeing_colours(table: np.ndarray, model, colours: np.ndarray) -> np.ndarray:
    """The colours (rows of `colours`) on which the table's decision is not the model's."""
    return colours[lut_is_skin(table, colours) != model_is_skin(model, colours)]


def lut_to_bytes(table: np.ndarray) -> bytes:
    """The table as a compressed .npz of its packed bits (`pack_table`); no pickle."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{LUT_ARRAY: pack_table(table)})
    return buffer.getvalue()


def lut_from_bytes(data: bytes, packed: bool = False) -> np.ndarray:
    """A table written by `lut_to_bytes` (loaded with allow_pickle=False): bool, or its packed bits."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        if LUT_ARRAY not in archive.files:
            raise ValueError(f"not a skin lookup table: no {LUT_ARRAY!r} array (found {archive.files})")
        bits = archive[LUT_ARRAY]
    if bits.dtype != np.uint8 or bits.shape != (COLOURS // 8,):
        raise ValueError(f"not a skin lookup table: bits array is {bits.dtype} {bits.shape}")
    if packed:
        return bits
    return np.unpackbits(bits, bitorder="little").view(bool).reshape(LUT_SHAPE)
