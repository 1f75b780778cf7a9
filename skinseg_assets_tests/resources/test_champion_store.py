import numpy as np
import pytest

from skinseg_assets.pixels.lut import compile_lut
from skinseg_assets.resources.blob_store import GCSBlobStore, LazyGCSResource, LocalBlobStore
from skinseg_assets.resources.champion_store import ChampionNotFoundError, ChampionStore, code_version
from skinseg_assets.resources.model_io_manager import UntrustedModelError
from skinseg_assets_tests.champion_fixtures import fit_tree, publish


@pytest.fixture(params=["local", "gcs"])
def store(request, tmp_path) -> ChampionStore:
    if request.param == "local":
        return ChampionStore(LocalBlobStore(root=str(tmp_path / "blobs")))
    bucket = request.getfixturevalue("gcs_bucket")
    return ChampionStore(GCSBlobStore(gcs=LazyGCSResource(project="skinseg-test"), bucket=bucket, prefix="skinseg"))


@pytest.fixture(scope="module")
def models():
    return fit_tree(max_depth=3), fit_tree(max_depth=6)


def test_versions_are_numbered_and_the_pointer_follows(store, models):
    assert store.current() is None and store.versions() == []
    first = publish(store, models[0])
    second = publish(store, models[1])
    assert (first.version, second.version) == (1, 2)
    assert first.model_key == "champions/v0001/model.skops"
    assert store.versions() == [1, 2]
    assert store.current() == second
    assert store.blob_store.list_keys("champions/") == [
        "champions/current.json",
        "champions/v0001/manifest.json",
        "champions/v0001/model.skops",
        "champions/v0002/manifest.json",
        "champions/v0002/model.skops",
    ]
    store.point_to(first, action="rolled_back", reason="test")
    assert store.current() == first and store.pointer().action == "rolled_back"
    loaded = store.load_model(store.current())
    assert (loaded.predict([[74, 85, 123]]) == models[0].predict([[74, 85, 123]])).all()


def test_promotions_at_the_same_moment_get_different_versions_and_the_first_to_finish_serves(store, models):
    """Each promotion decided against the champion it read (none here): the pointer moves only if
    it still names that one, so a later finisher cannot silently replace an earlier one's champion."""
    from concurrent.futures import ThreadPoolExecutor

    from skinseg_assets.resources.champion_store import ChampionChangedError

    promoters = []
    for _ in range(4):
        promoter = ChampionStore(store.blob_store)  # one per run, as production_skin_classifier makes
        promoter.versions = lambda: []  # every promoter lists before any writes
        assert promoter.current() is None
        promoters.append(promoter)

    def promote(promoter_and_model):
        promoter, model = promoter_and_model
        try:
            return publish(promoter, model)
        except ChampionChangedError as error:
            return error

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(promote, zip(promoters, [models[0], models[1]] * 2)))
    served = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, ChampionChangedError)]
    assert len(served) == 1 and len(refused) == 3
    assert store.current() == served[0]
    assert all("changed since this run read it" in str(error) and "is stored but does not serve" in str(error) for error in refused)
    assert store.versions() == [1, 2, 3, 4]
    for version in store.versions():  # each number holds the model its manifest describes
        assert store.model_bytes(store.manifest(version))


def test_a_rollback_and_a_promotion_that_read_the_same_champion_do_not_both_move_it(store, models):
    from skinseg_assets.resources.champion_store import ChampionChangedError

    first, second = publish(store, models[0]), publish(store, models[1])
    rolling_back, promoting = ChampionStore(store.blob_store), ChampionStore(store.blob_store)
    assert rolling_back.pointer().version == 2 and promoting.current() == second
    rolling_back.point_to(first, action="rolled_back", reason="v0002 misses dark skin tones")
    with pytest.raises(ChampionChangedError, match="v0003 is stored but does not serve"):
        publish(promoting, models[0])
    assert store.pointer().version == 1 and store.pointer().action == "rolled_back"
    assert store.versions() == [1, 2, 3]


@pytest.mark.parametrize("damage", [b"{not json", b'{"version": 1}', b"[]"], ids=["not-json", "fields-missing", "not-an-object"])
def test_a_damaged_manifest_or_pointer_is_refused_naming_the_file(store, models, damage):
    publish(store, models[0])
    store.blob_store.write_bytes("champions/v0001/manifest.json", damage)
    with pytest.raises(UntrustedModelError, match=r"champions/v0001/manifest\.json is not a readable ChampionManifest"):
        store.current()
    store.blob_store.write_bytes("champions/current.json", damage)
    with pytest.raises(UntrustedModelError, match=r"champions/current\.json is not a readable ChampionPointer"):
        store.pointer()


def test_a_pointer_written_by_a_newer_release_with_more_fields_is_read(store, models):
    import json

    first = publish(store, models[0])
    newer = {**json.loads(store.blob_store.read_bytes("champions/current.json")), "canary_share": 0.1}
    store.blob_store.write_bytes("champions/current.json", json.dumps(newer).encode())
    assert store.current() == first and store.pointer().version == 1


def test_a_changed_model_file_is_refused(store, models):
    champion = publish(store, models[0])
    store.blob_store.write_bytes(champion.model_key, store.blob_store.read_bytes(champion.model_key) + b"\0")
    with pytest.raises(UntrustedModelError, match="changed outside skinseg; not loaded"):
        store.load_model(champion)


def test_a_model_swapped_together_with_its_manifest_is_caught_by_the_pointer_or_history(store, models):
    first = publish(store, models[0])
    publish(store, models[1])
    store.point_to(first, action="rolled_back", reason="test")  # the pointer records v0001's sha256
    # Someone copies v0002's model and manifest over v0001's: the pair is self-consistent ...
    for name in ("model.skops", "manifest.json"):
        store.blob_store.write_bytes(f"champions/v0001/{name}", store.blob_store.read_bytes(f"champions/v0002/{name}"))
    forged = store.manifest(1)
    assert store.model_bytes(forged)
    # ... but neither the promotion history nor the pointer agrees with it.
    with pytest.raises(UntrustedModelError, match="promotion history records"):
        store.load_model(forged, expected_sha256=first.sha256)
    with pytest.raises(UntrustedModelError, match="but its manifest records"):
        store.current()


def test_a_missing_pointer_beside_stored_versions_is_not_read_as_no_champion(store, models):
    publish(store, models[0])
    publish(store, models[1])
    blob_store = store.blob_store
    if isinstance(blob_store, LocalBlobStore):
        blob_store._path("champions/current.json").unlink()
    else:
        blob_store._bucket().blob(blob_store._name("champions/current.json")).delete()
    with pytest.raises(ChampionNotFoundError, match=r"champions/current\.json is missing, but champion versions v0001, v0002 are stored"):
        store.current()
    assert store.pointer() is None and store.versions() == [1, 2]


def test_unknown_version_names_the_known_ones(store, models):
    publish(store, models[0])
    with pytest.raises(ChampionNotFoundError, match=r"v0007 does not exist \(versions: v0001\)"):
        store.manifest(7)


def test_lookup_table_is_tied_to_its_champion(tmp_path, models):
    store = ChampionStore(LocalBlobStore(root=str(tmp_path / "blobs")))
    first = publish(store, models[0])
    assert store.load_lut(first) is None
    compiled = compile_lut(models[0])
    lut = store.save_lut(first, compiled)
    assert lut.lut_key == "lookup_tables/v0001/skin_color_lut.npz" and lut.champion_sha256 == first.sha256
    assert np.array_equal(store.load_lut(first), compiled.table)
    # v0001's table offered as v0002's: its manifest names the model it was compiled from.
    second = publish(store, models[1])
    store.blob_store.write_bytes(store.lut_manifest_key(second), store.blob_store.read_bytes(store.lut_manifest_key(first)))
    with pytest.raises(UntrustedModelError, match=rf"compiled from a model with sha256 {first.sha256}, not v0002"):
        store.load_lut(second)
    store.blob_store.write_bytes(lut.lut_key, store.blob_store.read_bytes(lut.lut_key)[:-1] + b"x")
    with pytest.raises(UntrustedModelError, match="changed outside skinseg"):
        store.load_lut(first)


def test_code_version_names_the_package():
    version = code_version()
    assert version["package"] == "skinseg" and version["version"] != "unknown"


def test_a_table_compiled_with_the_old_tie_rule_is_refused_until_compiled_again(tmp_path, models):
    """Tables written before the rule was recorded called P(skin) = 0.5 skin; the model no longer does."""
    import json

    store = ChampionStore(LocalBlobStore(root=str(tmp_path / "blobs")))
    champion = publish(store, models[0])
    compiled = compile_lut(models[0])
    store.save_lut(champion, compiled)
    manifest = json.loads(store.blob_store.read_bytes(store.lut_manifest_key(champion)))
    assert manifest["decision"] == ">"
    del manifest["decision"]  # as an earlier release wrote it
    store.blob_store.write_bytes(store.lut_manifest_key(champion), json.dumps(manifest).encode())
    with pytest.raises(UntrustedModelError, match=r"when P\(skin\) >= 0.5, not when P\(skin\) > 0.5 .*compile it again"):
        store.load_lut(champion)
    store.save_lut(champion, compiled)  # serving_job compiles it again
    assert np.array_equal(store.load_lut(champion), compiled.table)
