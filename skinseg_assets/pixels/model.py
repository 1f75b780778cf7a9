"""Skin classifiers over (B, G, R): which scikit-learn estimators, and how they are built."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # the service scores loaded models without importing scikit-learn itself
    from sklearn.base import ClassifierMixin

FEATURES = ["B", "G", "R"]
ESTIMATORS = ("hist_gradient_boosting", "random_forest", "extra_trees", "k_nearest_neighbors")
# The default model: the job's config defaults and the benchmark's plain pipeline both read these.
DEFAULT_ESTIMATOR = "hist_gradient_boosting"
DEFAULT_HYPERPARAMETERS = {"max_iter": 300, "learning_rate": 0.2, "max_leaf_nodes": 63, "random_state": 0}
# A pixel is called skin when P(skin) >= this: in the metrics, the lookup table and the service.
SKIN_THRESHOLD = 0.5


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
    training_rows: int
    fit_seconds: float


def fit_classifier(model: ClassifierMixin, train: pd.DataFrame) -> FittedClassifier:
    """Fit `model` on the train side (one row per pixel, repeats included)."""
    started = time.perf_counter()
    model.fit(features(train), train["is_skin"].to_numpy())
    return FittedClassifier(model=model, training_rows=len(train), fit_seconds=time.perf_counter() - started)


def skin_probability_of_colours(model: ClassifierMixin, bgr: np.ndarray) -> np.ndarray:
    """P(skin) for an (N, 3) array of colours in B, G, R order."""
    classes = list(model.classes_)
    return model.predict_proba(np.asarray(bgr, dtype=np.uint8))[:, classes.index(True)]


def skin_probability(model: ClassifierMixin, pixels: pd.DataFrame) -> np.ndarray:
    """P(skin) for each pixel of a frame with B, G, R columns."""
    return skin_probability_of_colours(model, features(pixels))


def model_is_skin(model: ClassifierMixin, bgr: np.ndarray) -> np.ndarray:
    """The model's decision for each colour of an (N, 3) B, G, R array."""
    return skin_probability_of_colours(model, bgr) >= SKIN_THRESHOLD
