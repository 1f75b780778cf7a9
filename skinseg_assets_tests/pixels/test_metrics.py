"""Scoring a classifier on held-out pixels, checked against hand-computed values."""

import numpy as np
import pandas as pd
import pytest

from skinseg_assets.pixels.metrics import evaluate_classifier, meets_f1_floor, metrics_row
from skinseg_assets_tests.pixels.stubs import FixedProbability



def held_out_pixels(cases: list[tuple[int, bool]]) -> pd.DataFrame:
    """Test pixels from (P(skin) in percent, actual class)."""
    return pd.DataFrame(
        {
            "B": np.array([percent for percent, _ in cases], dtype=np.uint8),
            "G": np.uint8(0),
            "R": np.uint8(0),
            "is_skin": [is_skin for _, is_skin in cases],
        }
    )



# 3 skin pixels scored .95, .80, .30 and 5 non-skin pixels scored .60, .55, .20, .10, .05.
EIGHT_PIXELS = [(95, True), (80, True), (30, True), (60, False), (55, False), (20, False), (10, False), (5, False)]
# AUC = share of (skin, non-skin) pairs ranked right: .95 and .80 beat all 5, .30 beats 3 -> 13/15.
EIGHT_PIXELS_AUC = 13 / 15


@pytest.mark.parametrize(
    ("threshold", "matrix", "accuracy", "precision", "recall", "f1"),
    [
        # Skin called at .95, .80 (right) and .60, .55 (wrong); .30 missed.
        (0.5, [[3, 2], [1, 2]], 5 / 8, 2 / 4, 2 / 3, 2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3)),
        # Exactly at the threshold is not skin (scikit-learn's predict() breaks a tie so): .60 is skin, .55 is not.
        (0.55, [[4, 1], [1, 2]], 6 / 8, 2 / 3, 2 / 3, 2 / 3),
        (0.7, [[5, 0], [1, 2]], 7 / 8, 1.0, 2 / 3, 2 * 1.0 * (2 / 3) / (1.0 + 2 / 3)),
        # Everything called skin.
        (0.0, [[0, 5], [0, 3]], 3 / 8, 3 / 8, 1.0, 2 * (3 / 8) / (3 / 8 + 1)),
        # Nothing called skin: precision and F1 are 0 rather than an error.
        (0.99, [[5, 0], [3, 0]], 5 / 8, 0.0, 0.0, 0.0),
    ],
    ids=["at-0.5", "at-0.55-on-a-score", "at-0.7", "all-skin", "no-skin"],
)
@pytest.mark.parametrize("classes", [[False, True], [True, False]], ids=["skin-second", "skin-first"])
def test_evaluate_classifier_on_a_hand_computed_case(threshold, matrix, accuracy, precision, recall, f1, classes):
    scored = evaluate_classifier(FixedProbability(classes), held_out_pixels(EIGHT_PIXELS), threshold=threshold)

    assert scored.confusion_matrix().tolist() == matrix
    (tn, fp), (fn, tp) = matrix
    assert (scored.true_negatives, scored.false_positives) == (tn, fp)
    assert (scored.false_negatives, scored.true_positives) == (fn, tp)
    assert scored.accuracy == pytest.approx(accuracy)
    assert scored.precision == pytest.approx(precision)
    assert scored.recall == pytest.approx(recall)
    assert scored.f1 == pytest.approx(f1)
    # AUC ranks probabilities: the threshold does not change it.
    assert scored.roc_auc == pytest.approx(EIGHT_PIXELS_AUC)
    assert scored.test_rows == 8


def test_the_scores_are_the_five_headline_numbers():
    scored = evaluate_classifier(FixedProbability([False, True]), held_out_pixels(EIGHT_PIXELS))
    # At the default threshold (0.5), as computed by hand above.
    assert scored.scores() == pytest.approx(
        {"accuracy": 5 / 8, "precision": 1 / 2, "recall": 2 / 3, "f1": 4 / 7, "roc_auc": EIGHT_PIXELS_AUC}
    )
    assert all(isinstance(value, float) for value in scored.scores().values())


def test_the_roc_curve_runs_from_the_origin_to_the_corner_and_never_falls():
    scored = evaluate_classifier(FixedProbability([False, True]), held_out_pixels(EIGHT_PIXELS))
    fpr, tpr = scored.roc_false_positive_rate, scored.roc_true_positive_rate

    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    # The area under the plotted curve is the reported AUC.
    assert np.trapezoid(tpr, fpr) == pytest.approx(scored.roc_auc)


@pytest.mark.parametrize(
    ("cases", "auc", "accuracy"),
    [
        ([(90, True), (80, True), (20, False), (10, False)], 1.0, 1.0),
        ([(90, False), (80, False), (20, True), (10, True)], 0.0, 0.0),
        ([(60, True), (60, False), (40, True), (40, False)], 0.5, 0.5),
    ],
    ids=["perfect", "inverted", "uninformative"],
)
def test_extreme_classifiers_score_as_expected(cases, auc, accuracy):
    scored = evaluate_classifier(FixedProbability([False, True]), held_out_pixels(cases))
    assert scored.roc_auc == pytest.approx(auc)
    assert scored.accuracy == pytest.approx(accuracy)


def test_the_floor_is_on_f1_and_a_model_exactly_at_it_passes():
    scored = evaluate_classifier(FixedProbability([False, True]), held_out_pixels(EIGHT_PIXELS))
    assert (scored.accuracy, scored.f1) == pytest.approx((5 / 8, 4 / 7))
    assert not meets_f1_floor(scored, 0.6)  # accuracy (0.625) would pass it
    assert meets_f1_floor(scored, scored.f1)
    assert not meets_f1_floor(scored, np.nextafter(scored.f1, 1.0))


def test_the_stored_row_keeps_each_cell_of_the_confusion_matrix_in_its_place():
    # Hand-computed above at 0.5: 3 true negatives, 2 false positives (.60, .55), 1 false negative (.30), 2 true positives.
    scored = evaluate_classifier(FixedProbability([False, True]), held_out_pixels(EIGHT_PIXELS))
    row = metrics_row(scored, FixedProbability([False, True]), training_rows=10, run_id="run").iloc[0]
    cells = ("true_negatives", "false_positives", "false_negatives", "true_positives")
    assert [row[name] for name in cells] == [3, 2, 1, 2]
    assert row["precision"] == pytest.approx(2 / (2 + 2)) and row["recall"] == pytest.approx(2 / (2 + 1))
