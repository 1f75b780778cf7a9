import re

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from skinseg_assets.pixels.lut import (
    COLOURS,
    LUT_SHAPE,
    compile_lut,
    lut_from_bytes,
    lut_is_skin,
    lut_to_bytes,
    pack_table,
    segment_rgb,
    segment_rgb_with_model,
)
from skinseg_assets.pixels.colours import colours_of_keys
from skinseg_assets.pixels.model import features, model_is_skin
from skinseg_assets_tests.champion_fixtures import fit_tree, small_split


@pytest.fixture(scope="module")
def tree():
    return fit_tree()


@pytest.fixture(scope="module")
def tree_lut(tree):
    return compile_lut(tree).table


def test_table_agrees_with_the_model_on_a_million_random_colours(tree, tree_lut):
    colours = colours_of_keys(np.random.default_rng(1).integers(0, COLOURS, 1_000_000, dtype=np.uint32))
    by_model = model_is_skin(tree, colours)
    assert (lut_is_skin(tree_lut, colours) == by_model).all()
    assert (lut_is_skin(pack_table(tree_lut), colours) == by_model).all()  # the packed form the service uses


def test_table_agrees_with_a_gradient_boosting_model():
    train = small_split().train
    model = HistGradientBoostingClassifier(max_iter=3, max_leaf_nodes=4, learning_rate=0.3, random_state=0)
    model.fit(features(train), train["is_skin"].to_numpy())
    compiled = compile_lut(model)
    assert compiled.table.shape == LUT_SHAPE and compiled.table.dtype == bool
    colours = colours_of_keys(np.random.default_rng(2).integers(0, COLOURS, 1_000_000, dtype=np.uint32))
    assert (lut_is_skin(compiled.table, colours) == model_is_skin(model, colours)).all()
    assert compiled.skin_colours > 0


def test_table_is_indexed_b_g_r(tree, tree_lut):
    skin = small_split().test.query("is_skin").iloc[0]
    b, g, r = int(skin.B), int(skin.G), int(skin.R)
    assert tree_lut[b, g, r] == model_is_skin(tree, np.array([[b, g, r]]))[0]


def test_images_are_rgb_and_the_table_is_bgr():
    # A table that calls a colour skin only when B=10, G=20, R=200 (a reddish pixel).
    table = np.zeros(LUT_SHAPE, dtype=bool)
    table[10, 20, 200] = True
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[0, 1] = (200, 20, 10)  # RGB order: red channel first
    image[1, 2] = (10, 20, 200)  # the same numbers in B, G, R order: a blue pixel, not skin
    mask = segment_rgb(table, image)
    assert mask.tolist() == [[False, True, False], [False, False, False]]


def test_segmenting_by_table_and_by_model_agree_on_a_photo(tree, tree_lut):
    from skimage import data

    photo = data.astronaut()
    by_table = segment_rgb(tree_lut, photo, rows_per_chunk=100)
    assert by_table.shape == photo.shape[:2]
    assert (segment_rgb(pack_table(tree_lut), photo) == by_table).all()
    assert (by_table == segment_rgb_with_model(tree, photo)).all()
    assert (by_table == segment_rgb_with_model(tree, photo, rows_per_chunk=37)).all()
    assert 0.01 < by_table.mean() < 0.5


@pytest.mark.parametrize(
    "image",
    [np.full((1, 2, 3), 0.9), np.zeros((2, 2), dtype=np.uint8), np.zeros((2, 2, 4), dtype=np.uint8)],
    ids=["float-pixels", "grey", "rgba"],
)
def test_both_ways_of_segmenting_refuse_an_image_that_is_not_rgb_bytes(tree, tree_lut, image):
    # Cast to bytes, a float image of 0-1 values would turn black and be judged as that.
    expected = re.escape(f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}")
    with pytest.raises(ValueError, match=expected):
        segment_rgb(tree_lut, image)
    with pytest.raises(ValueError, match=expected):
        segment_rgb_with_model(tree, image)


def test_round_trip_through_bytes_is_small_and_exact(tree_lut):
    data = lut_to_bytes(tree_lut)
    assert len(data) < 2 * 1024 * 1024  # packed bits, compressed
    assert (lut_from_bytes(data) == tree_lut).all()
    assert (lut_from_bytes(data, packed=True) == pack_table(tree_lut)).all()


def test_bytes_that_are_not_a_table_are_refused(tmp_path):
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, is_skin_bits_little_endian=np.zeros(10, dtype=np.uint8))
    with pytest.raises(ValueError, match="not a skin lookup table: bits array"):
        lut_from_bytes(buffer.getvalue())
    buffer = io.BytesIO()
    np.savez_compressed(buffer, something_else=np.zeros(10, dtype=np.uint8))
    with pytest.raises(ValueError, match="not a skin lookup table: no 'is_skin_bits_little_endian'"):
        lut_from_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="bool array"):
        lut_to_bytes(np.zeros((2, 2, 2), dtype=bool))


def test_non_rgb_images_are_refused(tree_lut):
    with pytest.raises(ValueError, match="RGB uint8"):
        segment_rgb(tree_lut, np.zeros((4, 4), dtype=np.uint8))
