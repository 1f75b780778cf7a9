"""skin_classifier's run config: one estimator, with only the settings that estimator takes.

In the run config the estimator is a choice of one key, checked when the run is launched (in the
Launchpad as you type): an unknown estimator, or a setting another estimator takes, is refused
before any step runs, instead of being dropped or failing after ingestion and the split. Value
ranges (n_neighbors >= 1, 0 < validation_fraction < 1, 0 <= random_state < 2**32) are checked when the step starts.

    ops:
      skin_classifier:
        config:
          estimator:
            extra_trees:
              n_estimators: 200
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from skinseg_assets.pixels.model import DEFAULT_HYPERPARAMETERS

# scikit-learn takes seeds 0 to 2**32 - 1 (numpy's legacy RandomState).
SEED = Field(
    default=DEFAULT_HYPERPARAMETERS["random_state"],
    ge=0,
    le=2**32 - 1,
    description="Seed (0 to 2**32 - 1), so that a retrain on the same data gives the same model",
)


class EstimatorSettings(dg.Config):
    def hyperparameters(self) -> dict:
        """The scikit-learn constructor arguments (every field but the estimator's name)."""
        return {name: getattr(self, name) for name in type(self).model_fields if name != "kind"}


class HistGradientBoostingSettings(EstimatorSettings):
    """scikit-learn's HistGradientBoostingClassifier."""

    kind: Literal["hist_gradient_boosting"] = "hist_gradient_boosting"
    max_iter: int = Field(
        default=DEFAULT_HYPERPARAMETERS["max_iter"], ge=1, description="Most boosting rounds (early stopping may stop sooner)"
    )
    learning_rate: float = Field(default=DEFAULT_HYPERPARAMETERS["learning_rate"], gt=0.0, description="Shrinkage")
    max_leaf_nodes: int = Field(default=DEFAULT_HYPERPARAMETERS["max_leaf_nodes"], ge=2, description="Leaves per tree")
    max_depth: int | None = Field(default=None, ge=1, description="Tree depth limit (none: limited by max_leaf_nodes)")
    early_stopping: bool = Field(
        default=DEFAULT_HYPERPARAMETERS["early_stopping"],
        description="Stop when the loss on held-out training colours stops improving (off: exactly max_iter rounds on every training row)",
    )
    validation_fraction: float = Field(
        default=DEFAULT_HYPERPARAMETERS["validation_fraction"],
        gt=0.0,
        lt=1.0,
        description="Share of the training colours held out to decide when to stop (with early_stopping)",
    )
    random_state: int = SEED


class ForestSettings(EstimatorSettings):
    n_estimators: int = Field(default=100, ge=1, description="Number of trees")
    max_depth: int | None = Field(default=None, ge=1, description="Tree depth limit (none: grown until pure)")
    random_state: int = SEED

    def hyperparameters(self) -> dict:
        return {**super().hyperparameters(), "n_jobs": -1}


class RandomForestSettings(ForestSettings):
    """scikit-learn's RandomForestClassifier."""

    kind: Literal["random_forest"] = "random_forest"


class ExtraTreesSettings(ForestSettings):
    """scikit-learn's ExtraTreesClassifier."""

    kind: Literal["extra_trees"] = "extra_trees"


class KNearestNeighborsSettings(EstimatorSettings):
    """scikit-learn's KNeighborsClassifier."""

    kind: Literal["k_nearest_neighbors"] = "k_nearest_neighbors"
    n_neighbors: int = Field(default=5, ge=1, description="Neighbours that vote (an odd number avoids 0.5 ties)")

    def hyperparameters(self) -> dict:
        return {**super().hyperparameters(), "n_jobs": -1}


ESTIMATOR_SETTINGS = (HistGradientBoostingSettings, RandomForestSettings, ExtraTreesSettings, KNearestNeighborsSettings)


class SkinClassifierConfig(dg.Config):
    """Which scikit-learn estimator to train, and its hyperparameters."""

    estimator: HistGradientBoostingSettings | RandomForestSettings | ExtraTreesSettings | KNearestNeighborsSettings = Field(
        default=HistGradientBoostingSettings(),
        discriminator="kind",
        description="One of: hist_gradient_boosting (default), random_forest, extra_trees, k_nearest_neighbors",
    )
