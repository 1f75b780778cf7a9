import pandas as pd
import pytest

from skinseg_assets.pixels.champion import (
    CURRENT_TEST_SPLIT,
    Contender,
    compare_with_champion,
    data_identity,
    decide_promotion,
    training_identity,
    unseen_by_champion,
)
from skinseg_assets.pixels.metrics import evaluate_classifier
from skinseg_assets.pixels.split import colour_overlap, split_by_colour
from skinseg_assets_tests.champion_fixtures import fit_tree, sample_pixels


@pytest.mark.parametrize(
    ("candidate", "champion", "promote", "why"),
    [
        (Contender(0.95, 100), None, True, "no champion yet"),
        (Contender(0.991, 100), Contender(0.990, 100), True, "candidate is better"),
        (Contender(0.989, 500), Contender(0.990, 100), False, "candidate is worse"),
        # Equal to 6 decimals is a tie, whatever lies beyond.
        (Contender(0.9900004, 100), Contender(0.9899996, 100), False, "tie, and the candidate saw no more data"),
        (Contender(0.9899996, 101), Contender(0.9900004, 100), True, "tie, and the candidate saw more data"),
        (Contender(0.990001, 100), Contender(0.990000, 100), True, "candidate is better"),
        (Contender(0.99, 99), Contender(0.99, 100), False, "tie, and the candidate saw no more data"),
        # No rows of both classes to compare on: the champion stays, however good the candidate.
        (Contender(None, 500), Contender(None, 100), False, "no honest comparison: the current test split do not hold both classes"),
    ],
)
def test_promotion_rule(candidate, champion, promote, why):
    decision = decide_promotion(candidate, champion)
    assert decision.promote is promote
    assert why in decision.reason


def test_reason_states_both_scores():
    reason = decide_promotion(Contender(0.5, 1), Contender(0.75, 1)).reason
    assert "0.500000" in reason and "0.750000" in reason and "current test split" in reason


def _pixels(rows, **extra):
    frame = pd.DataFrame(rows, columns=["B", "G", "R", "is_skin"]).astype({"B": "uint8", "G": "uint8", "R": "uint8"})
    return frame.assign(**extra)


def test_data_identity_ignores_row_order_but_not_labels():
    rows = [(1, 2, 3, True), (4, 5, 6, False), (7, 8, 9, False)]
    identity = data_identity(_pixels(rows))
    assert identity["rows"] == 3 and identity["skin_share"] == pytest.approx(1 / 3, abs=1e-6)
    assert data_identity(_pixels(rows[::-1]))["sha256"] == identity["sha256"]
    relabelled = [(1, 2, 3, False), *rows[1:]]
    assert data_identity(_pixels(relabelled))["sha256"] != identity["sha256"]
    assert "batches" not in identity


def test_data_identity_lists_batches_when_the_frame_has_them():
    frame = _pixels([(1, 2, 3, True), (4, 5, 6, False)], batch=["2024-02.txt", "2024-01.txt"])
    assert data_identity(frame)["batches"] == ["2024-01.txt", "2024-02.txt"]


@pytest.mark.parametrize("champion_fraction, candidate_fraction", [(0.2, 0.3), (0.1, 0.2), (0.2, 0.2), (0.3, 0.2)])
def test_unseen_by_champion_keeps_exactly_the_test_colours_neither_model_trained_on(champion_fraction, candidate_fraction):
    pixels = sample_pixels()
    champion_split = split_by_colour(pixels, champion_fraction)
    candidate_split = split_by_colour(pixels, candidate_fraction)
    comparable = unseen_by_champion(candidate_split.test, training_identity(champion_split.train))
    assert colour_overlap(comparable, champion_split.train) == 0
    assert colour_overlap(comparable, candidate_split.train) == 0
    # Nothing the champion did not see is dropped: the rows kept are the test rows outside its training.
    seen = set(map(tuple, champion_split.train[["B", "G", "R"]].to_numpy()))
    unseen = [row for row in map(tuple, candidate_split.test[["B", "G", "R"]].to_numpy()) if row not in seen]
    assert len(comparable) == len(unseen)
    if champion_fraction >= candidate_fraction:
        assert len(comparable) == len(candidate_split.test)
    else:
        assert 0 < len(comparable) < len(candidate_split.test)


def test_a_manifest_without_the_bucket_is_taken_as_the_default_split():
    pixels = sample_pixels()
    default_split = split_by_colour(pixels)
    wider = split_by_colour(pixels, 0.3)
    legacy_training_data = {"rows": len(default_split.train)}  # written before first_colour_bucket
    comparable = unseen_by_champion(wider.test, legacy_training_data)
    assert colour_overlap(comparable, default_split.train) == 0
    assert len(comparable) == len(default_split.test)


def test_the_comparison_scores_both_models_on_the_same_rows_and_loads_any_champion_it_has():
    pixels = sample_pixels()
    split = split_by_colour(pixels)
    candidate, champion = fit_tree(6, split), fit_tree(2, split)
    scores = evaluate_classifier(candidate, split.test)
    loads = []

    def load_champion():
        loads.append(1)
        return champion

    first = compare_with_champion(candidate, scores, split.test, None, load_champion)
    assert (first.described, first.candidate, first.champion, loads) == (CURRENT_TEST_SPLIT, scores, None, [])

    same_split = compare_with_champion(candidate, scores, split.test, training_identity(split.train), load_champion)
    assert same_split.described == CURRENT_TEST_SPLIT and same_split.candidate == scores and len(same_split.rows) == len(split.test)
    assert same_split.champion.f1 == evaluate_classifier(champion, split.test).f1 and loads == [1]

    wider = split_by_colour(pixels, 0.3)  # today's split; the champion was fitted on the 0.2 one
    wider_scores = evaluate_classifier(candidate, wider.test)
    narrower = compare_with_champion(candidate, wider_scores, wider.test, training_identity(split.train), load_champion)
    assert narrower.described == f"the {len(narrower.rows):,} of {len(wider.test):,} test rows the champion did not train on"
    assert narrower.candidate.f1 == evaluate_classifier(candidate, narrower.rows).f1
    assert narrower.champion.f1 == evaluate_classifier(champion, narrower.rows).f1

    # A champion whose training began at bucket 1 saw all but bucket 0's colours; of test rows that
    # are all non-skin, that leaves one class to compare on: neither model is scored, but the
    # champion is loaded all the same, so that a kept champion's file is checked.
    from_bucket_1 = dict(training_identity(split.train), first_colour_bucket=1)
    sliver = compare_with_champion(candidate, wider_scores, wider.test[~wider.test["is_skin"]], from_bucket_1, load_champion)
    assert 0 < len(sliver.rows) < (~wider.test["is_skin"]).sum()
    assert (sliver.candidate, sliver.champion, len(loads)) == (None, None, 3)
