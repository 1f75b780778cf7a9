"""Champion/challenger: when a candidate model replaces the production model.

The rule (`decide_promotion`), applied to F1 on the *current* test split, both models scored by
the same function on the same rows. If the champion was fitted on a split with a smaller test
fraction, some of today's test colours were in its training data: both are then scored only on
the test rows neither model saw (`unseen_by_champion`).

- no champion yet: the candidate is promoted;
- F1 compared after rounding to 6 decimals (`F1_DECIMALS`): a higher candidate is promoted, a
  lower one is not;
- a tie is promoted only if the candidate was trained on more rows than the champion (it has
  seen newer data and is no worse); a retrain on the same data therefore never adds a version.

Only candidates that passed their blocking checks (the F1 floor on `model_metrics`) ever reach
this decision: Dagster does not run the champion step after a failed blocking check.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from skinseg_assets.pixels.metrics import ClassifierMetrics, evaluate_classifier
from skinseg_assets.pixels.split import (
    SPLIT_BUCKETS,
    TEST_FRACTION,
    below_bucket,
    class_balance,
    colour_label_key,
    first_training_bucket,
    has_both_classes,
)

F1_DECIMALS = 6
CURRENT_TEST_SPLIT = "the current test split"
# Manifests written before the bucket was recorded: their champions were fitted on the default split.
DEFAULT_FIRST_TRAINING_BUCKET = round(TEST_FRACTION * SPLIT_BUCKETS)


@dataclass(frozen=True)
class Contender:
    """What the rule needs to know about a model: its F1 on the current test split and its data size."""

    f1: float | None  # None: the rows it would be compared on do not hold both classes
    training_rows: int


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


def decide_promotion(
    candidate: Contender, champion: Contender | None, compared_on: str = CURRENT_TEST_SPLIT
) -> PromotionDecision:
    """Whether the candidate replaces the champion (see the module docstring for the rule)."""
    if champion is None:
        return PromotionDecision(True, f"no champion yet; candidate F1 {candidate.f1:.6f} becomes the first")
    if champion.f1 is None:
        return PromotionDecision(False, f"no honest comparison: {compared_on} do not hold both classes; champion stays")
    candidate_f1 = round(candidate.f1, F1_DECIMALS)
    champion_f1 = round(champion.f1, F1_DECIMALS)
    scores = f"candidate F1 {candidate_f1:.6f} vs champion F1 {champion_f1:.6f} on {compared_on}"
    if candidate_f1 > champion_f1:
        return PromotionDecision(True, f"{scores}: candidate is better")
    if candidate_f1 < champion_f1:
        return PromotionDecision(False, f"{scores}: candidate is worse; champion stays")
    rows = f"{candidate.training_rows:,} vs {champion.training_rows:,} training rows"
    if candidate.training_rows > champion.training_rows:
        return PromotionDecision(True, f"{scores}: tie, and the candidate saw more data ({rows})")
    return PromotionDecision(False, f"{scores}: tie, and the candidate saw no more data ({rows}); champion stays")


def training_identity(train_pixels: pd.DataFrame) -> dict:
    """`data_identity` of the training pixels, with the lowest colour bucket trained on."""
    return {**data_identity(train_pixels), "first_colour_bucket": first_training_bucket(train_pixels)}


def unseen_by_champion(test_pixels: pd.DataFrame, champion_training_data: dict) -> pd.DataFrame:
    """The test rows whose colours the champion was not trained on (all of them, on the same split)."""
    first_bucket = champion_training_data.get("first_colour_bucket", DEFAULT_FIRST_TRAINING_BUCKET)
    return below_bucket(test_pixels, first_bucket)


@dataclass(frozen=True)
class Comparison:
    """Candidate and champion scored by the same function on the same test rows: those neither trained on."""

    rows: pd.DataFrame
    described: str  # CURRENT_TEST_SPLIT, or which part of it
    candidate: ClassifierMetrics | None  # None: those rows do not hold both classes
    champion: ClassifierMetrics | None  # None: no champion, or nothing to compare on

    @property
    def candidate_f1(self) -> float | None:
        return self.candidate.f1 if self.candidate is not None else None

    @property
    def champion_f1(self) -> float | None:
        return self.champion.f1 if self.champion is not None else None


def compare_with_champion(
    candidate_model,
    candidate_scores: ClassifierMetrics,
    test_pixels: pd.DataFrame,
    champion_training_data: dict | None,
    load_champion: Callable[[], object],
) -> Comparison:
    """The comparison the promotion rule decides on. `candidate_scores` are the candidate's on all of
    `test_pixels`; `load_champion` is called whenever there is a champion (loading it checks its
    file, so a champion kept without a comparison is checked too), and it is scored only when the
    compared rows hold both classes."""
    if champion_training_data is None:
        return Comparison(test_pixels, CURRENT_TEST_SPLIT, candidate_scores, None)
    # A champion fitted with a smaller test fraction saw some of today's test colours.
    rows = unseen_by_champion(test_pixels, champion_training_data)
    if len(rows) == len(test_pixels):
        described, candidate = CURRENT_TEST_SPLIT, candidate_scores
    else:
        described = f"the {len(rows):,} of {len(test_pixels):,} test rows the champion did not train on"
        candidate = evaluate_classifier(candidate_model, rows) if has_both_classes(rows) else None
    champion_model = load_champion()
    champion = evaluate_classifier(champion_model, rows) if candidate is not None else None
    return Comparison(rows, described, candidate, champion)


def data_identity(pixels: pd.DataFrame) -> dict:
    """What identifies a pixel frame: rows, skin share, a content hash, and its batches if it has any.

    The hash is over the sorted (colour, label) pairs, so it does not depend on row order.
    """
    keys = colour_label_key(pixels)
    identity = {
        "rows": len(pixels),
        "skin_share": round(class_balance(pixels), 6),
        "sha256": hashlib.sha256(np.sort(keys).tobytes()).hexdigest(),
    }
    if "batch" in pixels.columns:
        identity["batches"] = sorted(str(batch) for batch in pixels["batch"].dropna().unique())
    return identity
