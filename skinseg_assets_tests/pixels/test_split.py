"""The split by colour: one side per colour, deterministic, stable as data grows, honest classes."""

import math

import numpy as np
import pandas as pd
import pytest

from skinseg_assets.pixels.split import (
    SPLIT_BUCKETS,
    SplitError,
    class_balance,
    colour_bucket,
    colour_key,
    hold_out_colours,
    is_test_colour,
    split_by_colour,
)

SPLIT_COLUMNS = ["B", "G", "R", "is_skin"]


def pixel_frame(rows: list[tuple[int, int, int, bool]]) -> pd.DataFrame:
    """A frame shaped like `validated_skin_pixels` (uint8 channels, bool class)."""
    frame = pd.DataFrame(rows, columns=SPLIT_COLUMNS)
    frame = frame.astype({"B": np.uint8, "G": np.uint8, "R": np.uint8, "is_skin": bool})
    frame.insert(0, "line_number", np.arange(1, len(frame) + 1, dtype=np.int64))
    return frame


def colour_of(key: int) -> tuple[int, int, int]:
    return key >> 16, (key >> 8) & 0xFF, key & 0xFF


def two_class_pixels() -> pd.DataFrame:
    """120 skin and 120 non-skin colours; every colour three times, one colour with both classes."""
    skin = [(b, 90 + b % 7, 200 - b % 11, True) for b in range(30, 150)]
    non_skin = [(200 - r % 9, 120 + r % 5, r, False) for r in range(0, 120)]
    rows = (skin + non_skin) * 3 + [(30, 90 + 30 % 7, 200 - 30 % 11, False)]
    return pixel_frame(rows)


def sorted_rows(frame: pd.DataFrame) -> list[tuple]:
    return sorted(frame[SPLIT_COLUMNS].itertuples(index=False, name=None))


def keys_of(frame: pd.DataFrame) -> set[int]:
    return set(colour_key(frame).tolist())


# --- colour_key ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("colour", "key"),
    [
        ((0, 0, 0), 0),
        ((0, 0, 1), 1),
        ((0, 1, 0), 256),
        ((1, 0, 0), 65_536),
        ((74, 85, 123), 74 * 65_536 + 85 * 256 + 123),
        ((255, 255, 255), 2**24 - 1),
    ],
)
def test_colour_key_packs_b_g_r_into_one_integer(colour, key):
    frame = pixel_frame([(*colour, True)])  # uint8 channels: the shift must not overflow
    assert colour_key(frame).tolist() == [key]


# --- one side per colour ------------------------------------------------------------------------


@pytest.mark.parametrize("test_fraction", [0.2, 0.5, 0.8])
def test_every_colour_lands_on_one_side_and_no_row_is_lost(test_fraction):
    pixels = two_class_pixels()
    split = split_by_colour(pixels, test_fraction)

    assert keys_of(split.train).isdisjoint(keys_of(split.test))
    assert split.colour_overlap() == 0
    assert sorted_rows(pd.concat([split.train, split.test])) == sorted_rows(pixels)


def test_the_sides_hold_the_split_columns_with_fresh_indexes():
    split = split_by_colour(two_class_pixels(), 0.5)
    for side in (split.train, split.test):
        assert list(side.columns) == SPLIT_COLUMNS
        assert side.index.equals(pd.RangeIndex(len(side)))
        assert side["B"].dtype == np.uint8


def test_the_split_is_the_same_every_time_and_whatever_the_row_order():
    pixels = two_class_pixels()
    first, second = split_by_colour(pixels), split_by_colour(pixels)
    pd.testing.assert_frame_equal(first.train, second.train)
    pd.testing.assert_frame_equal(first.test, second.test)

    shuffled = split_by_colour(pixels.sample(frac=1.0, random_state=7))
    assert sorted_rows(shuffled.train) == sorted_rows(first.train)
    assert sorted_rows(shuffled.test) == sorted_rows(first.test)


def test_a_colour_side_depends_on_the_colour_alone():
    keys = np.arange(0, 2**24, 4099, dtype=np.uint32)  # 4,093 colours spread over the cube
    together = is_test_colour(keys, 0.2)
    assert np.array_equal(is_test_colour(keys[::-1], 0.2), together[::-1])
    one_at_a_time = [bool(is_test_colour(keys[i : i + 1], 0.2)[0]) for i in range(0, len(keys), 409)]
    assert one_at_a_time == together[::409].tolist()


def test_new_rows_never_move_an_existing_colour():
    base = two_class_pixels()
    before = split_by_colour(base)
    new_colours = [(b, 10, 250, b % 2 == 0) for b in range(0, 200)]
    repeats = base.sample(n=100, random_state=3)[SPLIT_COLUMNS].itertuples(index=False, name=None)
    grown = pd.concat([base, pixel_frame(new_colours + list(repeats))], ignore_index=True)
    after = split_by_colour(grown)

    assert keys_of(before.test) <= keys_of(after.test)
    assert keys_of(before.train) <= keys_of(after.train)


def test_a_larger_test_fraction_only_moves_colours_to_the_test_side():
    keys = np.arange(0, 2**24, 997, dtype=np.uint32)
    smaller, larger = is_test_colour(keys, 0.1), is_test_colour(keys, 0.3)
    assert not (smaller & ~larger).any()
    assert larger.sum() > smaller.sum()


# --- refusals -------------------------------------------------------------------------------------


def _colours_on(side_is_test: bool, count: int) -> list[tuple[int, int, int]]:
    """`count` colours that the split puts on the given side (found by asking is_test_colour)."""
    keys = np.arange(100_000, 200_000, 37, dtype=np.uint32)
    on_side = keys[is_test_colour(keys, 0.5) == side_is_test][:count]
    assert len(on_side) == count
    return [colour_of(int(key)) for key in on_side]


@pytest.mark.parametrize(
    ("lonely_class", "lonely_side", "message"),
    [
        (True, "train", "the test side has no skin pixels (5 rows from 15)"),
        (True, "test", "the train side has no skin pixels (5 rows from 15)"),
        (False, "train", "the test side has no non-skin pixels (5 rows from 15)"),
        (False, "test", "the train side has no non-skin pixels (5 rows from 15)"),
    ],
)
def test_a_class_missing_on_one_side_is_refused_with_a_clear_message(lonely_class, lonely_side, message):
    """5 rows of one class on one side's colours only; 5 rows of the other class on each side."""
    train_colours, test_colours = _colours_on(False, 10), _colours_on(True, 10)
    lonely_colours = (train_colours if lonely_side == "train" else test_colours)[:5]
    rows = [(*colour, lonely_class) for colour in lonely_colours]
    rows += [(*colour, not lonely_class) for colour in train_colours[5:] + test_colours[5:]]
    pixels = pixel_frame(rows)

    with pytest.raises(SplitError) as raised:
        split_by_colour(pixels, 0.5)

    # The other side holds only its 5 rows of the other class.
    assert str(raised.value) == f"{message}: too little data for an honest split"


@pytest.mark.parametrize(
    ("is_skin", "message"),
    [
        (True, "the train side has no non-skin pixels"),
        (False, "the train side has no skin pixels"),
    ],
)
def test_a_single_class_frame_cannot_be_split(is_skin, message):
    pixels = pixel_frame([(b, 100, 200, is_skin) for b in range(100)])
    with pytest.raises(SplitError, match=message):
        split_by_colour(pixels)


def test_a_single_pixel_cannot_be_split():
    with pytest.raises(SplitError, match=r"has no .*pixels \(\d rows from 1\)"):
        split_by_colour(pixel_frame([(74, 85, 123, True)]))


@pytest.mark.parametrize("test_fraction", [0.0, 1.0, -0.1, 1.5, 20, math.nan])
def test_an_invalid_test_fraction_is_refused(test_fraction):
    expected = f"test_fraction must be between 0 and 1, got {test_fraction}"
    with pytest.raises(SplitError) as raised:
        split_by_colour(two_class_pixels(), test_fraction)
    assert str(raised.value) == expected
    with pytest.raises(SplitError, match="test_fraction must be between 0 and 1"):
        is_test_colour(np.array([1, 2, 3], dtype=np.uint32), test_fraction)


@pytest.mark.parametrize("test_fraction", [0.00004, 0.99996])
def test_a_test_fraction_finer_than_the_buckets_is_refused_as_such(test_fraction):
    with pytest.raises(SplitError) as raised:
        split_by_colour(two_class_pixels(), test_fraction)
    assert f"test_fraction {test_fraction} is finer than the split's 1/10,000 steps" in str(raised.value)
    assert "too little data" not in str(raised.value)


def test_split_error_is_a_value_error():
    assert issubclass(SplitError, ValueError)


# --- class_balance ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("classes", "share"),
    [
        ([True, False, False, True], 0.5),
        ([True, False, False, False], 0.25),
        ([True], 1.0),
        ([False, False, False], 0.0),
        ([], 0.0),
    ],
)
def test_class_balance_is_the_share_of_skin_pixels(classes, share):
    frame = pixel_frame([(1, 2, 3, is_skin) for is_skin in classes])
    assert class_balance(frame) == share


# --- the full UCI data --------------------------------------------------------------------------


@pytest.fixture
def uci_pixels(bundled_outcome) -> pd.DataFrame:
    return bundled_outcome.validated


@pytest.mark.parametrize("test_fraction", [0.1, 0.2, 0.3])
def test_on_the_full_data_the_test_share_is_close_to_the_fraction(uci_pixels, test_fraction):
    split = split_by_colour(uci_pixels, test_fraction)
    colours = np.unique(colour_key(uci_pixels))

    assert len(split.test) / len(uci_pixels) == pytest.approx(test_fraction, abs=0.02)
    # Sides are drawn per colour: over 51,433 colours the colour share is much tighter.
    assert is_test_colour(colours, test_fraction).mean() == pytest.approx(test_fraction, abs=0.01)
    assert len(split.train) + len(split.test) == len(uci_pixels)
    assert split.colour_overlap() == 0


def test_on_the_full_data_both_sides_hold_both_classes_in_similar_shares(uci_pixels):
    split = split_by_colour(uci_pixels)
    overall = class_balance(uci_pixels)
    for side in (split.train, split.test):
        assert set(side["is_skin"].unique()) == {True, False}
        assert class_balance(side) == pytest.approx(overall, abs=0.03)


def test_on_the_full_data_the_split_ignores_row_order_and_growth(uci_pixels):
    full = split_by_colour(uci_pixels)
    reversed_order = split_by_colour(uci_pixels.iloc[::-1])
    assert keys_of(reversed_order.test) == keys_of(full.test)
    assert len(reversed_order.test) == len(full.test)

    first_rows = split_by_colour(uci_pixels.iloc[:120_000])
    assert keys_of(first_rows.test) <= keys_of(full.test)
    assert keys_of(first_rows.train) <= keys_of(full.train)


# --- the early-stopping hold-out inside the train side -----------------------------------------


def test_the_held_out_colours_are_their_own_and_no_row_is_lost(uci_pixels):
    train = split_by_colour(uci_pixels).train
    fit, held_out = hold_out_colours(train, 0.1)
    assert len(fit) + len(held_out) == len(train)
    assert not keys_of(fit) & keys_of(held_out)
    assert keys_of(fit) | keys_of(held_out) == keys_of(train)
    assert len(keys_of(held_out)) / len(keys_of(train)) == pytest.approx(0.1, abs=0.02)
    assert set(held_out["is_skin"]) == set(fit["is_skin"]) == {True, False}


@pytest.mark.parametrize("test_fraction", [0.05, 0.2, 0.5])
def test_the_held_out_colours_are_the_highest_buckets_so_never_test_colours(uci_pixels, test_fraction):
    split = split_by_colour(uci_pixels, test_fraction)
    fit, held_out = hold_out_colours(split.train, 0.1)
    assert colour_bucket(colour_key(held_out)).min() > colour_bucket(colour_key(fit)).max()
    assert not keys_of(held_out) & keys_of(split.test)


def test_the_hold_out_is_the_same_whatever_the_row_order(uci_pixels):
    train = split_by_colour(uci_pixels).train
    _, held_out = hold_out_colours(train, 0.1)
    _, reversed_held_out = hold_out_colours(train.iloc[::-1], 0.1)
    assert sorted_rows(reversed_held_out) == sorted_rows(held_out)


def test_a_hold_out_missing_a_class_is_refused_naming_the_way_out():
    train = two_class_pixels()
    train = train[~train["is_skin"] | (colour_bucket(colour_key(train)) < np.uint64(SPLIT_BUCKETS // 2))]
    with pytest.raises(SplitError) as raised:
        hold_out_colours(train, 0.1)
    assert "held-out side" in str(raised.value) and "turn early stopping off" in str(raised.value)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_an_invalid_hold_out_fraction_is_refused(fraction):
    with pytest.raises(SplitError, match=f"the held-out fraction must be between 0 and 1, got {fraction}"):
        hold_out_colours(two_class_pixels(), fraction)
