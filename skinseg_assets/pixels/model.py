"""Skin classifiers over (B, G, R): which scikit-learn estimators, and how they are built."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from skinseg_assets.pixels.colours import CHANNELS
from skinseg_assets.pixels.split import hold_out_colours, in_canonical_order

if TYPE_CHECKING:  # the service scores loaded models without importing scikit-learn itself
    from sklearn.base import ClassifierMixin

FEATURES = list(CHANNELS)
ESTIMATORS = ("hist_gradient_boosting", "random_forest", "extra_trees", "k_nearest_neighbors")
# The default model: the job's config defaults (a test holds them to these) and the benchmark's
# plain pipeline.
DEFAULT_ESTIMATOR = "hist_gradient_boosting"
# Boosting stops when the loss on held-out training colours stops improving (`fit_classifier`),
# so max_iter is a ceiling; validation_fraction is the share of training colours held out.
DEFAULT_HYPERPARAMETERS = {
    "max_iter": 300,
    "learning_rate": 0.2,
    "max_leaf_nodes": 63,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "random_state": 0,
}
# A pixel is called skin when P(skin) > this (`skin_decision`): in the metrics, the lookup table and
# the service. Strictly greater, as scikit-learn's own predict() breaks a 0.5 tie for non-skin.
SKIN_THRESHOLD = 0.5
# How skin_decision compares P(skin) with SKIN_THRESHOLD; lookup tables record it.
SKIN_DECISION_RULE = ">"
# scikit-learn's early_stopping="auto" turns early stopping on above this many rows.
AUTO_EARLY_STOPPING_ROWS = 10_000


def build_estimator(estimator: str, **hyperparameters: Any) -> ClassifierMixin:
    """A fresh, unfitted scikit-learn classifier of the named kind."""
    # Imported here so that loading the code location does not pay for every estimator module.
    if estimator == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(**hyperparameters)
    if estimator == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**hyperparameters)
    if estimator == "extra_trees":
        from sklearn.ensemble import ExtraTreesClassifier

        return ExtraTreesClassifier(**hyperparameters)
    if estimator == "k_nearest_neighbors":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(**hyperparameters)
    raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")


def features(pixels: pd.DataFrame) -> np.ndarray:
    """The model's input matrix, columns B, G, R."""
    return pixels[FEATURES].to_numpy(dtype=np.uint8)


@dataclass(frozen=True)
class FittedClassifier:
    model: ClassifierMixin
    training_rows: int  # the train side it was given
    fit_seconds: float
    held_out_rows: int = 0  # of those, set aside (by colour) to decide when boosting stops
    iterations: int | None = None  # boosting rounds run, for a boosted model

    @property
    def fitted_rows(self) -> int:
        return self.training_rows - self.held_out_rows


def stops_early(model: ClassifierMixin, rows: int) -> bool:
    """Whether `model` (a scikit-learn estimator) will stop early when fitted on `rows` rows."""
    setting = getattr(model, "early_stopping", False)
    return setting is True or (setting == "auto" and rows > AUTO_EARLY_STOPPING_ROWS)


def fit_classifier(model: ClassifierMixin, train: pd.DataFrame) -> FittedClassifier:
    """Fit `model` on the train side (one row per pixel, repeats included).

    A model that stops early is given its validation rows: `validation_fraction` of the training
    colours, held out by colour (`split.hold_out_colours`). scikit-learn would hold out random rows,
    whose colours mostly also appear in the rows it learns from.

    The rows are fitted in (colour, label) order, not in the order they were stored: random forests
    and boosting on more than 200,000 rows sample rows by position, so the same pixels in another
    order (a batch ingested again moves to the end of its table) would give another model.
    """
    neighbours = getattr(model, "n_neighbors", None)
    if neighbours is not None and neighbours > len(train):
        raise ValueError(f"n_neighbors={neighbours} is more than the {len(train)} training rows: it could never predict")
    started = time.perf_counter()
    train = in_canonical_order(train)
    held_out_rows = 0
    if stops_early(model, len(train)):
        fit, held_out = hold_out_colours(train, model.validation_fraction)
        # Decided here, on all training rows: scikit-learn's "auto" would decide again on the fitted ones.
        model.set_params(early_stopping=True)
        model.fit(features(fit), fit["is_skin"].to_numpy(), X_val=features(held_out), y_val=held_out["is_skin"].to_numpy())
        held_out_rows = len(held_out)
    else:
        model.fit(features(train), train["is_skin"].to_numpy())
    return FittedClassifier(
        model=model,
        training_rows=len(train),
        fit_seconds=time.perf_counter() - started,
        held_out_rows=held_out_rows,
        iterations=getattr(model, "n_iter_", None),
    )


def skin_probability_of_colours(model: ClassifierMixin, bgr: np.ndarray) -> np.ndarray:
    """P(skin) for an (N, 3) array of colours in B, G, R order."""
    classes = list(model.classes_)
    return model.predict_proba(np.asarray(bgr, dtype=np.uint8))[:, classes.index(True)]


def skin_probability(model: ClassifierMixin, pixels: pd.DataFrame) -> np.ndarray:
    """P(skin) for each pixel of a frame with B, G, R columns."""
    return skin_probability_of_colours(model, features(pixels))


def skin_decision(probability: np.ndarray, threshold: float = SKIN_THRESHOLD) -> np.ndarray:
    """Skin or not, from P(skin): the one rule for the metrics, the lookup table and the service."""
    return np.asarray(probability) > threshold


def model_is_skin(model: ClassifierMixin, bgr: np.ndarray) -> np.ndarray:
    """The model's decision for each colour of an (N, 3) B, G, R array."""
    return skin_decision(skin_probability_of_colours(model, bgr))
