import pytest

from skinseg_assets.resources.blob_store import LocalBlobStore
from skinseg_assets.resources.champion_store import ChampionStore
from skinseg_assets_tests.champion_fixtures import publish, tree_and_lut


@pytest.fixture
def champions(data_dir) -> ChampionStore:
    """The data dir's blob store with champion v0001 (a depth-3 tree) and its lookup table."""
    store = ChampionStore(LocalBlobStore(root=str(data_dir / "blobs")))
    tree, compiled = tree_and_lut(3)
    store.save_lut(publish(store, tree), compiled)
    return store
