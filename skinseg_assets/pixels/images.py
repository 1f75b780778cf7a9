"""Photographs in and out: bundled sample photos, decoding uploads, masks and overlays as PNG.

Every image here is RGB (H, W, 3) uint8, as photographs and Pillow have it; the classifier and
its lookup table take B, G, R, and `lut.segment_rgb` does that conversion.
"""

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAX_IMAGE_PIXELS = 50_000_000
SKIN_TINT = np.array([0, 255, 96], dtype=np.float32)


class ImageError(ValueError):
    """Bytes that are not a usable image (unreadable, empty, or too large)."""


class ImageTooLargeError(ImageError):
    """An image with more pixels than allowed."""


@dataclass(frozen=True)
class SampleImage:
    name: str
    credit: str
    load: Callable[[], np.ndarray]


def _astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def _coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as file:
        return decode_rgb(file.read())


# Photographs shipped inside installed packages: nothing is downloaded at run time.
SAMPLE_IMAGES = (
    SampleImage("astronaut", "Eileen Collins, NASA (scikit-image's skimage.data.astronaut)", _astronaut),
    SampleImage("grace_hopper", "Grace Hopper, US Navy (matplotlib's sample_data/grace_hopper.jpg)", _grace_hopper),
    SampleImage("coffee", "a cup of coffee: no people, so any skin found is a false positive (skimage.data.coffee)", _coffee),
)


def decode_rgb(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An encoded image (PNG, JPEG, ...) as RGB; the size is checked before pixels are decoded."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageError("the image is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            pixels = image.width * image.height
            if pixels > max_pixels:
                raise ImageTooLargeError(
                    f"the image has {image.width}x{image.height} = {pixels:,} pixels; the limit is {max_pixels:,}"
                )
            # As a viewer shows it: phone photos store their rotation in EXIF.
            image = ImageOps.exif_transpose(image)
            if image.mode.startswith("I"):  # 16-bit grey: scaled to 8 bits (Pillow's convert clips it)
                grey = np.clip(np.asarray(image, dtype=np.int64) >> 8, 0, 255).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except ImageError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"the image is far too large: {error}") from None
    # Pillow reports damaged files in several ways: a malformed PPM or ICO header is a ValueError.
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error):
        raise ImageError("not an image Pillow can read (PNG, JPEG, ...)") from None


def encode_png(pixels: np.ndarray) -> bytes:
    """An RGB (H, W, 3) or grey (H, W) uint8 array, or a boolean mask, as PNG bytes."""
    from PIL import Image

    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.55, rows_per_chunk: int = 256) -> np.ndarray:
    """The image with skin tinted green and everything else dimmed, to see the mask at a glance.

    Worked out a block of rows at a time: a float copy of a whole 50-megapixel photo would take 600 MB.
    """
    out = np.empty(image.shape, dtype=np.uint8)
    for top in range(0, image.shape[0], rows_per_chunk):
        block, skin = image[top : top + rows_per_chunk], mask[top : top + rows_per_chunk]
        tinted = block.astype(np.float32) * 0.45
        tinted[skin] = block[skin].astype(np.float32) * (1 - alpha) + SKIN_TINT * alpha
        out[top : top + rows_per_chunk] = np.clip(tinted, 0, 255).astype(np.uint8)
    return out


def skin_share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else 0.0


def thumbnail_strip_png(images: list[np.ndarray], height: int = 128, gap: int = 4, colours: int = 64) -> bytes:
    """Images side by side at one height, palette-quantized: a small PNG for the metadata panel."""
    from PIL import Image

    sizes = [(max(1, round(height * image.shape[1] / image.shape[0])), height) for image in images]
    thumbs = [
        np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
        for image, size in zip(images, sizes, strict=True)
    ]
    width = sum(t.shape[1] for t in thumbs) + gap * (len(thumbs) - 1)
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    left = 0
    for thumb in thumbs:
        strip[:, left : left + thumb.shape[1]] = thumb
        left += thumb.shape[1] + gap
    buffer = io.BytesIO()
    Image.fromarray(strip).quantize(colours).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
