"""Building, fitting and asking the skin classifiers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skinseg_assets.pixels.model import (
    DEFAULT_ESTIMATOR,
    DEFAULT_HYPERPARAMETERS,
    ESTIMATORS,
    FEATURES,
    build_estimator,
    features,
    fit_classifier,
    model_is_skin,
    skin_decision,
    skin_probability,
    skin_probability_of_colours,
)
from skinseg_assets_tests.pixels.stubs import FixedProbability


def pixel_frame(rows: list[tuple[int, int, int, bool]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["B", "G", "R", "is_skin"])
    return frame.astype({"B": np.uint8, "G": np.uint8, "R": np.uint8, "is_skin": bool})


def separable_pixels() -> pd.DataFrame:
    """Skin is red-heavy (R >= 180, B <= 80), non-skin blue-heavy: a wide margin between them."""
    skin = [(20 + i, 90 + i % 13, 250 - i, True) for i in range(60)]
    non_skin = [(250 - i, 90 + i % 13, 20 + i, False) for i in range(60)]
    return pixel_frame(skin + non_skin)


# Colours not in the training frame, well inside each class's region.
PROBES = pixel_frame(
    [
        (35, 100, 230, True),
        (50, 95, 200, True),
        (70, 80, 185, True),
        (230, 100, 35, False),
        (200, 95, 50, False),
        (185, 80, 70, False),
    ]
)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_each_estimator_fits_and_separates_a_separable_frame(estimator):
    train = separable_pixels()
    fitted = fit_classifier(build_estimator(estimator), train)

    assert fitted.training_rows == len(train)
    check_is_fitted(fitted.model)
    probability = skin_probability(fitted.model, PROBES)
    assert probability.shape == (len(PROBES),)
    assert ((probability >= 0.0) & (probability <= 1.0)).all()
    assert ((probability > 0.5) == PROBES["is_skin"].to_numpy()).all()
    predicted = fitted.model.predict(features(PROBES))
    assert predicted.tolist() == PROBES["is_skin"].tolist()


BUILD_CASES = [
    ("hist_gradient_boosting", "HistGradientBoostingClassifier", {"max_iter": 17, "learning_rate": 0.3}),
    ("random_forest", "RandomForestClassifier", {"n_estimators": 7, "max_depth": 4}),
    ("extra_trees", "ExtraTreesClassifier", {"n_estimators": 9}),
    ("k_nearest_neighbors", "KNeighborsClassifier", {"n_neighbors": 3}),
]


@pytest.mark.parametrize(("estimator", "class_name", "hyperparameters"), BUILD_CASES)
def test_build_estimator_makes_a_fresh_unfitted_classifier_with_the_given_hyperparameters(
    estimator, class_name, hyperparameters
):
    first = build_estimator(estimator, **hyperparameters)
    second = build_estimator(estimator, **hyperparameters)

    assert type(first).__name__ == class_name
    assert first is not second
    for name, value in hyperparameters.items():
        assert first.get_params()[name] == value
    with pytest.raises(NotFittedError):
        check_is_fitted(first)


def test_the_build_table_covers_every_estimator():
    """A new name in ESTIMATORS needs a row in BUILD_CASES."""
    assert sorted(estimator for estimator, _, _ in BUILD_CASES) == sorted(ESTIMATORS)


@pytest.mark.parametrize("name", ["svm", "", "Random_Forest", "random-forest"])
def test_an_unknown_estimator_name_is_refused_naming_the_choices(name):
    with pytest.raises(ValueError) as raised:
        build_estimator(name)
    message = str(raised.value)
    assert f"unknown estimator {name!r}" in message
    for choice in ESTIMATORS:
        assert choice in message


def test_an_unknown_hyperparameter_is_not_silently_dropped():
    with pytest.raises(TypeError):
        build_estimator("random_forest", not_a_parameter=1)


def test_features_are_b_g_r_in_that_order_whatever_the_frame_order():
    frame = pd.DataFrame({"is_skin": [True, False], "R": [3, 6], "line_number": [1, 2], "G": [2, 5], "B": [1, 4]})
    matrix = features(frame)
    assert FEATURES == ["B", "G", "R"]
    assert matrix.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert matrix.dtype == np.uint8



@pytest.mark.parametrize("classes", [[False, True], [True, False]])
def test_skin_probability_reads_the_skin_column_whatever_the_class_order(classes):
    pixels = pixel_frame([(90, 0, 0, True), (25, 0, 0, False), (0, 0, 0, False)])
    assert skin_probability(FixedProbability(classes), pixels).tolist() == pytest.approx([0.9, 0.25, 0.0])


# --- early stopping on held-out colours -------------------------------------------------------


class RecordingBooster:
    """Stands in for HistGradientBoostingClassifier: records what fit() was given."""

    def __init__(self, early_stopping, validation_fraction=0.1):
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.n_iter_ = 7

    def set_params(self, **params):
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def fit(self, X, y, X_val=None, y_val=None):
        self.X, self.X_val, self.early_stopping_when_fitted = X, X_val, self.early_stopping
        return self


def keys(matrix: np.ndarray) -> set[int]:
    return {(int(b) << 16) | (int(g) << 8) | int(r) for b, g, r in matrix}


def repeated_two_class_pixels() -> pd.DataFrame:
    """600 colours of each class, each colour three times (as the UCI data repeats them)."""
    skin = [(b, 60 + g, 220, True) for b in range(20, 50) for g in range(20)]
    non_skin = [(220, 60 + g, r, False) for r in range(20, 50) for g in range(20)]
    return pixel_frame((skin + non_skin) * 3)


@pytest.mark.parametrize("early_stopping", [True, "auto"])
def test_early_stopping_is_decided_on_colours_the_model_does_not_fit(early_stopping):
    train = pd.concat([repeated_two_class_pixels()] * 3, ignore_index=True)  # 10,800 rows: "auto" is on
    fitted = fit_classifier(RecordingBooster(early_stopping), train)
    model = fitted.model
    assert model.X_val is not None
    assert not keys(model.X) & keys(model.X_val)
    assert len(model.X) + len(model.X_val) == len(train)
    assert fitted.held_out_rows == len(model.X_val) > 0
    assert fitted.fitted_rows == len(model.X)
    assert fitted.training_rows == len(train)
    assert fitted.iterations == 7
    # Decided on all 10,800 rows; "auto" left to scikit-learn would decide again on the 9,7xx fitted.
    assert model.early_stopping_when_fitted is True


@pytest.mark.parametrize("early_stopping, rows", [(False, 20_000), ("auto", 3_600)])
def test_without_early_stopping_every_training_row_is_fitted(early_stopping, rows):
    train = pd.concat([repeated_two_class_pixels()] * (rows // 3_600), ignore_index=True)
    fitted = fit_classifier(RecordingBooster(early_stopping), train)
    assert fitted.model.X_val is None
    assert len(fitted.model.X) == len(train) == fitted.fitted_rows
    assert fitted.held_out_rows == 0


def test_auto_early_stopping_just_above_scikit_learns_line_really_stops_early():
    """10,800 rows: held out 10% leaves fewer than 10,000 fitted, where scikit-learn's own "auto" would not stop early."""
    train = pd.concat([repeated_two_class_pixels()] * 3, ignore_index=True)
    model = build_estimator("hist_gradient_boosting", max_iter=200, early_stopping="auto", random_state=0)
    fitted = fit_classifier(model, train)
    assert fitted.fitted_rows < 10_000 < fitted.training_rows
    assert model.do_early_stopping_ and fitted.iterations < 200


def test_the_default_booster_stops_early_on_held_out_colours():
    train = repeated_two_class_pixels()
    model = build_estimator(DEFAULT_ESTIMATOR, **{**DEFAULT_HYPERPARAMETERS, "max_iter": 200})
    fitted = fit_classifier(model, train)
    assert 0 < fitted.held_out_rows < len(train)
    assert fitted.iterations == model.n_iter_ < 200
    assert model_is_skin(model, features(PROBES)).tolist() == PROBES["is_skin"].tolist()


def test_more_neighbours_than_training_rows_is_refused_when_fitting():
    train = separable_pixels()
    with pytest.raises(ValueError, match=f"n_neighbors={len(train) + 1} is more than the {len(train)} training rows"):
        fit_classifier(build_estimator("k_nearest_neighbors", n_neighbors=len(train) + 1), train)


# --- the decision rule ---------------------------------------------------------------------------


def test_a_tie_is_not_skin_as_scikit_learn_predict_decides_it():
    # Four neighbours, two of each class, for every probe: P(skin) is exactly 0.5.
    train = pixel_frame([(100, 100, 100, True), (100, 100, 102, True), (100, 100, 101, False), (100, 100, 103, False)])
    model = fit_classifier(build_estimator("k_nearest_neighbors", n_neighbors=4), train).model
    probes = np.array([[100, 100, 100], [0, 0, 0], [255, 255, 255]], dtype=np.uint8)
    probability = skin_probability_of_colours(model, probes)
    assert probability.tolist() == [0.5, 0.5, 0.5]
    assert model_is_skin(model, probes).tolist() == model.predict(probes).tolist() == [False, False, False]
    assert skin_decision(np.array([0.5, np.nextafter(0.5, 1)])).tolist() == [False, True]


def test_the_same_pixels_in_another_order_give_the_same_model(bundled_outcome):
    """A batch ingested again moves to the end of its table: the model must not change with it.

    A random forest draws its bootstrap rows by position (as boosting on more than 200,000 rows
    picks the rows its bins are made from), so without one fitting order it would.
    """
    train = bundled_outcome.validated.iloc[::8].reset_index(drop=True)
    reordered = pd.concat([train.iloc[len(train) // 3 :], train.iloc[: len(train) // 3]], ignore_index=True)
    first, second = (
        fit_classifier(build_estimator("random_forest", n_estimators=5, random_state=0), frame).model for frame in (train, reordered)
    )
    levels = np.arange(0, 256, 5, dtype=np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels), axis=-1).reshape(-1, 3)
    assert np.array_equal(skin_probability_of_colours(first, grid), skin_probability_of_colours(second, grid))
