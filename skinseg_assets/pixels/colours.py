"""A (B, G, R) colour as one integer, `B << 16 | G << 8 | R` (0 to 2**24 - 1), and back.

The split hashes this key, drift compares sets of it, and the lookup table is indexed by it.
"""

import numpy as np

CHANNELS = ("B", "G", "R")  # the order of a pixel file's columns and of the model's features


def colour_index(b: np.ndarray, g: np.ndarray, r: np.ndarray) -> np.ndarray:
    """B << 16 | G << 8 | R, as uint32, for arrays of channel values (any integer dtype).

    Values must already be 0-255 (uint8 images, validated pixels): nothing here checks the range.
    """
    return (
        (np.asarray(b).astype(np.uint32) << 16) | (np.asarray(g).astype(np.uint32) << 8) | np.asarray(r).astype(np.uint32)
    )


def colours_of_keys(keys: np.ndarray) -> np.ndarray:
    """(N, 3) B, G, R colours of colour keys `B << 16 | G << 8 | R`."""
    keys = np.asarray(keys, dtype=np.uint32)
    return np.stack([(keys >> 16) & 0xFF, (keys >> 8) & 0xFF, keys & 0xFF], axis=1).astype(np.uint8)
