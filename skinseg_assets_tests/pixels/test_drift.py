"""The drift report's numbers: PSI and KS per channel, skin shares, and new colours."""

import math

import numpy as np
import pandas as pd
import pytest

from skinseg_assets.pixels.drift import (
    psi_bins,
    chi_square_p_value,
    drift_report,
    kolmogorov_smirnov,
    population_stability_index,
)
from skinseg_assets.pixels.split import split_by_colour


def pixels(rows: list[tuple[int, int, int, bool]], batch: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["B", "G", "R", "is_skin"]).astype(
        {"B": np.uint8, "G": np.uint8, "R": np.uint8, "is_skin": bool}
    )
    return frame.assign(batch=batch)


def test_psi_of_a_hand_computed_case():
    # Reference: half its pixels in the first 16-level bin, half in the second; batch: 3/4 and 1/4.
    reference, batch = np.zeros(256), np.zeros(256)
    reference[0], reference[16] = 50, 50
    batch[5], batch[20] = 75, 25
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert population_stability_index(reference, batch) == pytest.approx(expected)
    assert population_stability_index(reference, reference) == 0.0


def test_the_bins_are_sixteen_runs_of_sixteen_levels():
    counts = np.zeros(256)
    counts[[0, 15, 16, 255]] = 1
    assert psi_bins(counts).tolist() == [2, 1] + [0] * 13 + [1]


def test_ks_is_the_largest_gap_between_the_cumulative_shares():
    reference, batch = np.zeros(256), np.zeros(256)
    reference[10], reference[200] = 1, 1  # half at 10, half at 200
    batch[10], batch[200] = 3, 1  # three quarters at 10
    assert kolmogorov_smirnov(reference, batch) == pytest.approx(0.25)


def test_a_batch_repeating_known_pixels_has_no_drift_and_no_new_colours(bundled_outcome):
    """Test-side colours are known too: against the training data alone a fifth would look new."""
    earlier = bundled_outcome.validated.drop(columns="line_number").assign(batch="earlier")
    split = split_by_colour(earlier)
    again = earlier.iloc[::9].assign(batch="again")

    report = drift_report(again, split.train, split.test)

    assert report.new_colour_share == 0.0
    assert report.max_psi < 0.01
    assert report.batch_rows == len(again) and report.reference_rows == len(split.train)
    assert report.batch_skin_share == pytest.approx(report.reference_skin_share, abs=0.01)


def test_the_new_colour_share_counts_rows_whose_colour_no_other_batch_had():
    other = pixels([(10, 10, 10, True), (20, 20, 20, False), (30, 30, 30, False)], "earlier")
    batch = pixels([(10, 10, 10, True), (10, 10, 10, True), (30, 30, 30, False), (50, 50, 50, True)], "new")
    # (30, 30, 30) is on the test side: known, though not trained on.
    report = drift_report(batch, other.iloc[:2], other.iloc[2:])

    assert report.new_colour_share == pytest.approx(1 / 4)
    assert report.as_row("new")["new_colour_share"].tolist() == [0.25]
    assert "unseen_colour_share" not in report.as_row("new")


def test_with_nothing_to_compare_the_report_says_so_with_empty_distances():
    batch = pixels([(10, 10, 10, True), (40, 40, 40, False)], "first")
    nothing = batch.iloc[:0]
    report = drift_report(batch, nothing, nothing)
    assert report.psi == {} and report.ks == {} and report.max_psi == 0.0
    assert not report.compared and report.drifted_channels(0.25) == []
    assert report.new_colour_share == 1.0
    assert report.batch_skin_share == 0.5
    row = report.as_row("first")
    assert row[["psi_B", "ks_R", "reference_skin_share"]].isna().all(axis=None)  # unknown, not 0


def test_an_empty_batch_has_no_shares_to_report():
    """A duplicate batch validates no rows: its shares are unknown (NaN), not 0."""
    reference = pixels([(10, 10, 10, True), (40, 40, 40, False)], "first")
    report = drift_report(reference.iloc[:0], reference, reference.iloc[:0])
    assert not report.compared and report.batch_rows == 0
    assert report.as_row("copy")[["batch_skin_share", "new_colour_share"]].isna().all(axis=None)
    assert report.reference_skin_share == 0.5


def test_the_chi_square_p_value_of_a_hand_computed_case():
    reference, batch = np.zeros(256), np.zeros(256)
    reference[0], reference[16] = 50, 50
    batch[5], batch[20] = 75, 25
    # 2x2 table [[50, 50], [75, 25]]: expected [[62.5, 37.5], [62.5, 37.5]], statistic 13.333, 1 dof.
    assert chi_square_p_value(reference, batch) == pytest.approx(math.erfc(math.sqrt(40 / 3 / 2)))
    assert chi_square_p_value(reference, reference) == pytest.approx(1.0)
    single = np.zeros(256)
    single[3] = 10
    assert chi_square_p_value(single, single * 2) == 1.0  # one bin: nothing can differ


def test_a_small_sample_of_the_training_data_does_not_drift_but_a_small_shifted_batch_does(bundled_outcome):
    """At 100 rows the PSI of a sample of the same data passes 0.25 about half the time."""
    earlier = bundled_outcome.validated.drop(columns="line_number").assign(batch="earlier")
    split = split_by_colour(earlier)
    rng = np.random.default_rng(0)
    samples = [earlier.iloc[rng.choice(len(earlier), 100, replace=False)].assign(batch="sample") for _ in range(40)]
    reports = [drift_report(sample, split.train, split.test) for sample in samples]
    assert sum(report.max_psi > 0.25 for report in reports) >= 10  # the PSI line alone would warn
    assert sum(bool(report.drifted_channels(0.25)) for report in reports) <= 1
    shifted = samples[0].iloc[:50].assign(B=np.uint8(250))
    assert "B" in drift_report(shifted, split.train, split.test).drifted_channels(0.25)
