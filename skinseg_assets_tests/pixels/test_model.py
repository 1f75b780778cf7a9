"""Building, fitting and asking the skin classifiers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skinseg_assets.pixels.model import (
    ESTIMATORS,
    FEATURES,
    build_estimator,
    features,
    fit_classifier,
    skin_probability,
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
    assert ((probability >= 0.5) == PROBES["is_skin"].to_numpy()).all()
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
