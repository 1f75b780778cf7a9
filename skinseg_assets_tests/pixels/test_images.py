import io

import numpy as np
import pytest
from PIL import Image

from skinseg_assets.pixels.images import (
    SKIN_TINT,
    SAMPLE_IMAGES,
    ImageError,
    ImageTooLargeError,
    decode_rgb,
    encode_png,
    overlay,
    thumbnail_strip_png,
)


def _encoded(array: np.ndarray, format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format)
    return buffer.getvalue()


def test_sample_photographs_ship_with_packages():
    names = [sample.name for sample in SAMPLE_IMAGES]
    assert {"astronaut", "grace_hopper"} <= set(names)
    for sample in SAMPLE_IMAGES:
        image = sample.load()
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_decoding_gives_rgb_whatever_the_format():
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red
    assert (decode_rgb(_encoded(rgb, "PNG")) == rgb).all()
    grey = decode_rgb(_encoded(np.full((4, 5), 7, dtype=np.uint8), "PNG"))
    assert grey.shape == (4, 5, 3)
    rgba = np.dstack([rgb, np.full((4, 5), 255, dtype=np.uint8)])
    assert decode_rgb(_encoded(rgba, "PNG")).shape == (4, 5, 3)


def test_a_16_bit_grey_image_is_scaled_to_8_bits_not_clipped():
    grey = np.array([[0, 32768, 65535]], dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    assert decode_rgb(buffer.getvalue()).tolist() == [[[0, 0, 0], [128, 128, 128], [255, 255, 255]]]


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n truncated"])
def test_unreadable_bytes_are_an_image_error(data):
    with pytest.raises(ImageError):
        decode_rgb(data)


def test_size_is_checked_before_decoding():
    # The header says 100x100, the pixel data is cut short: only a check made before decoding
    # names the size; decoding would fail first.
    header_only = _encoded(np.zeros((100, 100, 3), dtype=np.uint8), "PNG")[:60]
    with pytest.raises(ImageTooLargeError, match="100x100 = 10,000 pixels; the limit is 9,999"):
        decode_rgb(header_only, max_pixels=9_999)
    with pytest.raises(ImageError, match="not an image Pillow can read"):
        decode_rgb(header_only, max_pixels=10_000)


def test_mask_png_is_white_on_black_and_overlay_keeps_the_shape():
    mask = np.array([[True, False]])
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(mask))))
    assert decoded.tolist() == [[255, 0]]
    image = np.full((1, 2, 3), 100, dtype=np.uint8)
    tinted = overlay(image, mask)
    assert tinted.shape == image.shape
    assert tinted[0, 0, 1] > tinted[0, 0, 0]  # skin tinted green
    assert (tinted[0, 1] < image[0, 1]).all()  # the rest dimmed


def test_overlay_by_blocks_of_rows_is_the_whole_image_at_once():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 40, 3), dtype=np.uint8)
    mask = rng.random((300, 40)) < 0.3
    whole = image.astype(np.float32) * 0.45  # the formula, applied to the whole image in one go
    whole[mask] = image[mask].astype(np.float32) * 0.45 + SKIN_TINT * 0.55
    expected = np.clip(whole, 0, 255).astype(np.uint8)
    assert (overlay(image, mask, rows_per_chunk=7) == expected).all()
    assert (overlay(image, mask) == expected).all()


def test_thumbnail_strip_is_small():
    images = [np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)] * 3
    strip = Image.open(io.BytesIO(thumbnail_strip_png(images)))
    assert strip.size == (3 * 171 + 2 * 4, 128)  # each image 128 high at its own aspect, 4 px apart
    assert strip.mode == "P" and len(strip.getcolors()) <= 64  # a 64-colour palette, not full RGB
