"""How well a skin classifier does on held-out pixels."""

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from sklearn import metrics as sk_metrics
from sklearn.base import ClassifierMixin

from skinseg_assets.pixels.model import SKIN_THRESHOLD, skin_decision, skin_probability

MIN_F1 = 0.997  # the lowest F1 on colour-disjoint test pixels a model may have, unless configured otherwise
SCORE_NAMES = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True)
class ClassifierMetrics:
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float
    true_negatives: int
    false_positives: int
    false_negatives: int
    true_positives: int
    test_rows: int
    predict_seconds: float
    roc_false_positive_rate: np.ndarray
    roc_true_positive_rate: np.ndarray

    def confusion_matrix(self) -> np.ndarray:
        """Rows: actual non-skin, skin; columns: predicted non-skin, skin."""
        return np.array(
            [[self.true_negatives, self.false_positives], [self.false_negatives, self.true_positives]]
        )

    def scores(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SCORE_NAMES}


def evaluate_classifier(model: ClassifierMixin, test: pd.DataFrame, threshold: float = SKIN_THRESHOLD) -> ClassifierMetrics:
    """Score `model` on the test side; a pixel is called skin when P(skin) > threshold."""
    started = time.perf_counter()
    probability = skin_probability(model, test)
    predict_seconds = time.perf_counter() - started
    actual = test["is_skin"].to_numpy(dtype=bool)
    predicted = skin_decision(probability, threshold)
    (tn, fp), (fn, tp) = sk_metrics.confusion_matrix(actual, predicted, labels=[False, True])
    fpr, tpr, _ = sk_metrics.roc_curve(actual, probability)
    return ClassifierMetrics(
        accuracy=float(sk_metrics.accuracy_score(actual, predicted)),
        precision=float(sk_metrics.precision_score(actual, predicted, zero_division=0)),
        recall=float(sk_metrics.recall_score(actual, predicted, zero_division=0)),
        f1=float(sk_metrics.f1_score(actual, predicted, zero_division=0)),
        roc_auc=float(sk_metrics.roc_auc_score(actual, probability)),
        true_negatives=int(tn),
        false_positives=int(fp),
        false_negatives=int(fn),
        true_positives=int(tp),
        test_rows=len(test),
        predict_seconds=predict_seconds,
        roc_false_positive_rate=fpr,
        roc_true_positive_rate=tpr,
    )


@dataclass(frozen=True)
class Provenance:
    """Which model, configured how, fitted on which pixels, scored on which: what makes history rows comparable."""

    parameters: dict | None = None
    model_sha256: str | None = None
    training_data_sha256: str | None = None
    test_data_sha256: str | None = None  # the same model scores differently once batches add test colours


def meets_f1_floor(metrics: ClassifierMetrics, min_f1: float) -> bool:
    """The quality floor: F1 (not accuracy, which the many non-skin pixels flatter) at least
    `min_f1`; a model exactly at the floor passes."""
    return metrics.f1 >= min_f1


def metrics_row(metrics: ClassifierMetrics, model, training_rows: int, run_id: str, provenance: Provenance = Provenance()) -> pd.DataFrame:
    """One row per evaluation: what `model_metrics` stores and the history table accumulates."""
    return pd.DataFrame(
        [
            {
                "evaluated_at": datetime.now(timezone.utc).replace(tzinfo=None),
                "run_id": run_id,
                "estimator": type(model).__name__,
                "training_rows": training_rows,
                "test_rows": metrics.test_rows,
                **metrics.scores(),
                "true_negatives": metrics.true_negatives,
                "false_positives": metrics.false_positives,
                "false_negatives": metrics.false_negatives,
                "true_positives": metrics.true_positives,
                "parameters": None if provenance.parameters is None else json.dumps(provenance.parameters, sort_keys=True),
                "model_sha256": provenance.model_sha256,
                "training_data_sha256": provenance.training_data_sha256,
                "test_data_sha256": provenance.test_data_sha256,
            }
        ]
    )
