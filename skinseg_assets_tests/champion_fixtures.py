"""Small data and small models for the champion, lookup-table and service tests."""

from functools import lru_cache

import pandas as pd
from sklearn.tree import DecisionTreeClassifier

from skinseg_assets.pixels.model import features
from skinseg_assets.pixels.split import ColourSplit, split_by_colour
from skinseg_assets.resources.champion_store import ChampionManifest, ChampionStore
from skinseg_assets.resources.model_io_manager import dumps_model
from skinseg_assets_tests.helpers import bundled_pixels


def sample_pixels(rows: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """A random sample of the bundled UCI pixels: B, G, R (uint8), is_skin."""
    return bundled_pixels().sample(rows, random_state=seed).reset_index(drop=True)


@lru_cache(maxsize=1)
def small_split() -> ColourSplit:
    return split_by_colour(sample_pixels())


def fit_tree(max_depth: int = 6, split: ColourSplit | None = None) -> DecisionTreeClassifier:
    """A decision tree: compiles into a lookup table in well under a second."""
    train = (split or small_split()).train
    return DecisionTreeClassifier(max_depth=max_depth, random_state=0).fit(features(train), train["is_skin"].to_numpy())


def publish(store: ChampionStore, model, f1: float = 0.95, training_rows: int = 1000) -> ChampionManifest:
    """Promote `model` straight into the store (stored, then pointed to), with plausible manifest fields."""
    manifest = store.store_version(
        dumps_model(model),
        estimator=type(model).__name__,
        test_metrics={"f1": f1},
        training_data={"rows": training_rows, "batches": []},
        test_data={"rows": 100},
        code_version={"package": "skinseg", "version": "test", "git_commit": None},
        reason="test promotion",
    )
    store.point_to(manifest, action="promoted", reason=manifest.reason)
    return manifest


@lru_cache(maxsize=4)
def tree_and_lut(max_depth: int = 6):
    """A tree and its compiled lookup table, made once per test session."""
    from skinseg_assets.pixels.lut import compile_lut

    tree = fit_tree(max_depth)
    return tree, compile_lut(tree)
