"""A train/test split by colour: every (B, G, R) colour lands on one side only.

The side is a pure function of the colour (a 64-bit mix of its key), so the split needs no
state, is the same in every process, and adding rows never moves an existing colour.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skinseg_assets.pixels.colours import CHANNELS, colour_index

SPLIT_BUCKETS = 10_000

TEST_FRACTION = 0.2  # share of colours held out for testing, unless configured otherwise


class SplitError(ValueError):
    """The data cannot be split honestly (for example, a class missing on one side)."""


def colour_key(pixels: pd.DataFrame) -> np.ndarray:
    """Each row's colour as one integer, B << 16 | G << 8 | R (`colours.colour_index`)."""
    return colour_index(pixels["B"].to_numpy(), pixels["G"].to_numpy(), pixels["R"].to_numpy())


def colour_label_key(pixels: pd.DataFrame) -> np.ndarray:
    """Each row's (colour, label) as one integer, colour_key << 1 | is_skin: rows with equal keys are
    the same training example."""
    return (colour_key(pixels).astype(np.uint64) << np.uint64(1)) | pixels["is_skin"].to_numpy(dtype=np.uint64)


def in_canonical_order(pixels: pd.DataFrame) -> pd.DataFrame:
    """The rows sorted by (colour, label): one order for the same pixels, however they were stored."""
    return pixels.iloc[np.argsort(colour_label_key(pixels), kind="stable")]


def _mix64(keys: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: spreads neighbouring colours evenly over 64 bits."""
    mixed = keys.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return mixed ^ (mixed >> np.uint64(31))


def colour_bucket(keys: np.ndarray) -> np.ndarray:
    """Each colour key's bucket in 0..SPLIT_BUCKETS-1; the test side is the buckets below a threshold."""
    return _mix64(keys) % np.uint64(SPLIT_BUCKETS)


def is_test_colour(keys: np.ndarray, test_fraction: float) -> np.ndarray:
    """Whether each colour key belongs to the test side."""
    if not 0.0 < test_fraction < 1.0:
        raise SplitError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    test_buckets = round(test_fraction * SPLIT_BUCKETS)
    if not 0 < test_buckets < SPLIT_BUCKETS:
        raise SplitError(
            f"test_fraction {test_fraction} is finer than the split's 1/{SPLIT_BUCKETS:,} steps: it would put "
            f"{'no' if test_buckets == 0 else 'every'} colour on the test side"
        )
    return colour_bucket(keys) < np.uint64(test_buckets)


def first_training_bucket(train_pixels: pd.DataFrame) -> int:
    """The lowest bucket among the training colours: a model fitted on them never saw a colour below it.

    Whatever test_fraction made the split, the test side is a prefix of the buckets, so two models
    fitted with different fractions can still be compared honestly on the colours below both.
    """
    if train_pixels.empty:
        return SPLIT_BUCKETS
    return int(colour_bucket(colour_key(train_pixels)).min())


def hold_out_colours(train_pixels: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit, held out): about `fraction` of the training colours set aside, every colour on one side.

    For early stopping. A random row-level hold-out would share most of its colours with the rows
    the model learns from (colours repeat heavily), the leak the train/test split avoids. The
    held-out colours are the highest buckets: the test side is the lowest, so the two never meet,
    whatever test_fraction made the split.
    """
    if not 0.0 < fraction < 1.0:
        raise SplitError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    buckets = colour_bucket(colour_key(train_pixels))
    first = int(buckets.min()) if len(buckets) else SPLIT_BUCKETS
    held_out = buckets >= np.uint64(SPLIT_BUCKETS - max(1, round(fraction * (SPLIT_BUCKETS - first))))
    fit, validation = train_pixels[~held_out], train_pixels[held_out]
    for side, frame in (("fitted", fit), ("held-out", validation)):
        if not has_both_classes(frame):
            raise SplitError(
                f"holding out {fraction:.0%} of the training colours for early stopping leaves the {side} side "
                f"with {len(frame)} rows and not both classes: too little data; turn early stopping off"
            )
    return fit, validation


def has_both_classes(pixels: pd.DataFrame) -> bool:
    """Whether the frame has skin and non-skin rows."""
    return bool(pixels["is_skin"].any() and not pixels["is_skin"].all())


def below_bucket(pixels: pd.DataFrame, bucket: int) -> pd.DataFrame:
    """The rows whose colour falls in a bucket below `bucket`."""
    return pixels[colour_bucket(colour_key(pixels)) < np.uint64(bucket)]


@dataclass(frozen=True)
class ColourSplit:
    train: pd.DataFrame
    test: pd.DataFrame

    def colour_overlap(self) -> int:
        """How many colours appear on both sides (0 by construction)."""
        return colour_overlap(self.train, self.test)


def colour_overlap(first: pd.DataFrame, second: pd.DataFrame) -> int:
    """How many distinct (B, G, R) colours appear in both frames."""
    return len(np.intersect1d(colour_key(first), colour_key(second)))


def split_by_colour(pixels: pd.DataFrame, test_fraction: float = TEST_FRACTION) -> ColourSplit:
    """Split validated pixels into train and test sides by colour; both must hold both classes."""
    if pixels.empty:
        raise SplitError("there are no validated pixels to split yet")
    on_test_side = is_test_colour(colour_key(pixels), test_fraction)
    columns = [column for column in ("batch", *CHANNELS, "is_skin") if column in pixels.columns]
    split = ColourSplit(
        train=pixels.loc[~on_test_side, columns].reset_index(drop=True),
        test=pixels.loc[on_test_side, columns].reset_index(drop=True),
    )
    for side, frame in (("train", split.train), ("test", split.test)):
        if not has_both_classes(frame):
            missing = "non-skin" if frame["is_skin"].any() else "skin"
            raise SplitError(
                f"the {side} side has no {missing} pixels ({len(frame)} rows from "
                f"{len(pixels)}): too little data for an honest split"
            )
    return split


def class_balance(frame: pd.DataFrame) -> float:
    """Share of skin pixels."""
    return float(frame["is_skin"].mean()) if len(frame) else 0.0
