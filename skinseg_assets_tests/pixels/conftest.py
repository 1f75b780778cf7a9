"""The bundled UCI file, read, parsed and validated once for every full-data test here."""

import pytest

from skinseg_assets.pixels.rules import ValidationOutcome, validate_pixels
from skinseg_assets.pixels.source import ParsedPixelFile, PixelFile, parse_pixel_file, read_bundled_uci


@pytest.fixture(scope="session")
def bundled_uci() -> PixelFile:
    return read_bundled_uci()


@pytest.fixture(scope="session")
def bundled_parsed(bundled_uci: PixelFile) -> ParsedPixelFile:
    """Shared between tests: read it, never change it."""
    return parse_pixel_file(bundled_uci)


@pytest.fixture(scope="session")
def bundled_outcome(bundled_uci: PixelFile, bundled_parsed: ParsedPixelFile) -> ValidationOutcome:
    """Shared between tests: read it, never change it."""
    return validate_pixels(bundled_parsed.raw, bundled_uci.source)
