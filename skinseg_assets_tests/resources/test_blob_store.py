
import pytest

from skinseg_assets.resources.blob_store import (
    NO_VERSION,
    BlobStoreUnavailableError,
    GCSBlobStore,
    LazyGCSResource,
    LocalBlobStore,
    VersionConflictError,
)
from skinseg_assets.resources.champion_store import ChampionStore
from skinseg_assets_tests.helpers import (
    gcs_client,
    gcs_in_an_outage,
    gcs_losing_the_answer_to_the_first_upload,
    gcs_with_object_roles_only,
)


@pytest.fixture(params=["local", "gcs"])
def blob_store(request, tmp_path):
    if request.param == "local":
        return LocalBlobStore(root=str(tmp_path / "blobs"))
    bucket = request.getfixturevalue("gcs_bucket")
    return GCSBlobStore(gcs=LazyGCSResource(project="skinseg-test"), bucket=bucket, prefix="models")


def test_round_trip_and_listing(blob_store):
    blob_store.write_bytes("a/one.bin", b"1")
    blob_store.write_bytes("a/two.bin", b"22")
    blob_store.write_bytes("b/three.bin", b"333")
    assert blob_store.read_bytes("a/two.bin") == b"22"
    assert blob_store.list_keys("a/") == ["a/one.bin", "a/two.bin"]
    assert blob_store.list_keys() == ["a/one.bin", "a/two.bin", "b/three.bin"]
    # A prefix is a start of keys, not only a folder; keys deeper down are listed too.
    blob_store.write_bytes("a/deeper/four.bin", b"4444")
    assert blob_store.list_keys("a/t") == ["a/two.bin"]
    assert blob_store.list_keys("a/d") == ["a/deeper/four.bin"]
    assert blob_store.list_keys("c/") == blob_store.list_keys("a/x/") == []


def test_missing_blob_names_its_uri(blob_store):
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        blob_store.read_bytes("missing.bin")


def test_replacing_a_version_that_another_writer_replaced_is_refused(blob_store):
    from skinseg_assets.resources.blob_store import NO_VERSION, VersionConflictError

    assert blob_store.read_versioned("current.json") == (None, NO_VERSION)
    first = blob_store.replace_bytes("current.json", b"v1", NO_VERSION)
    with pytest.raises(VersionConflictError, match="current.json changed since it was read"):
        blob_store.replace_bytes("current.json", b"v1 again", NO_VERSION)  # it exists now
    data, version = blob_store.read_versioned("current.json")
    assert (data, version) == (b"v1", first)
    second = blob_store.replace_bytes("current.json", b"v2", version)
    with pytest.raises(VersionConflictError):
        blob_store.replace_bytes("current.json", b"v3", version)  # a stale version
    assert blob_store.read_versioned("current.json") == (b"v2", second)
    assert "current.json" in " ".join(blob_store.list_keys())  # the lock file beside it is not a key
    assert blob_store.list_keys() == ["current.json"]


def test_a_bucket_that_does_not_exist_is_an_unreadable_store_not_a_missing_blob(gcs_bucket):
    store = GCSBlobStore(gcs=LazyGCSResource(project="skinseg-test"), bucket=f"{gcs_bucket}-typo", prefix="models")
    with pytest.raises(BlobStoreUnavailableError, match=rf"champions/current.json: bucket {gcs_bucket}-typo does not exist"):
        store.read_bytes("champions/current.json")


def test_with_object_roles_only_a_missing_blob_is_missing_and_a_missing_bucket_unavailable(gcs_bucket, fake_gcs_server, monkeypatch):
    """The README's role for a real bucket (roles/storage.objectAdmin) cannot read the bucket's
    metadata: "no champion promoted yet" must not read as an outage for it."""
    from google.api_core.exceptions import Forbidden

    with gcs_with_object_roles_only(fake_gcs_server) as endpoint:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        with pytest.raises(Forbidden):
            gcs_client(endpoint).bucket(gcs_bucket).exists()
        store = GCSBlobStore(gcs=LazyGCSResource(project="skinseg-test"), bucket=gcs_bucket, prefix="models", read_retry_seconds=5)
        store.write_bytes("kept.txt", b"objects work")
        assert store.read_bytes("kept.txt") == b"objects work"
        assert store.read_versioned("champions/current.json") == (None, NO_VERSION)
        assert ChampionStore(store).current() is None
        with pytest.raises(FileNotFoundError, match=rf"no blob gs://{gcs_bucket}/models/never-written"):
            store.read_bytes("never-written")
        typo = GCSBlobStore(gcs=LazyGCSResource(project="skinseg-test"), bucket=f"{gcs_bucket}-typo", prefix="models", read_retry_seconds=5)
        with pytest.raises(BlobStoreUnavailableError, match=rf"bucket {gcs_bucket}-typo does not exist"):
            typo.read_bytes("champions/current.json")


def test_a_replace_whose_answer_was_lost_is_done_not_a_conflict(gcs_bucket, fake_gcs_server, monkeypatch):
    """The client library sends a conditional upload again when its answer is lost; the retry then
    finds the version it was to replace gone (412). The bytes there are this writer's: done."""
    store = GCSBlobStore(gcs=LazyGCSResource(project="skinseg-test"), bucket=gcs_bucket, prefix="models")
    version = store.replace_bytes("champions/current.json", b'{"version": 1}', NO_VERSION)
    with gcs_losing_the_answer_to_the_first_upload(fake_gcs_server) as endpoint:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        relayed = GCSBlobStore(gcs=LazyGCSResource(project="skinseg-test"), bucket=gcs_bucket, prefix="models")
        new_version = relayed.replace_bytes("champions/current.json", b'{"version": 2}', version)
        assert relayed.read_versioned("champions/current.json") == (b'{"version": 2}', new_version)
        # Another writer's bytes there are still a conflict.
        with pytest.raises(VersionConflictError, match="changed since it was read"):
            relayed.replace_bytes("champions/current.json", b'{"version": 3}', version)


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a/../b", "a//b"])
def test_unsafe_keys_are_refused(key, tmp_path):
    with pytest.raises(ValueError, match="relative path"):
        LocalBlobStore(root=str(tmp_path)).write_bytes(key, b"x")


def test_gcs_uri_names_bucket_and_prefix(gcs_bucket):
    store = GCSBlobStore(gcs=LazyGCSResource(), bucket=gcs_bucket, prefix="skinseg")
    assert store.uri("skin_classifier.skops") == f"gs://{gcs_bucket}/skinseg/skin_classifier.skops"


def test_create_refuses_an_existing_key_and_keeps_its_content(blob_store):
    blob_store.create_bytes("claims/v0001", b"first")
    with pytest.raises(FileExistsError, match="claims/v0001 already exists"):
        blob_store.create_bytes("claims/v0001", b"second")
    assert blob_store.read_bytes("claims/v0001") == b"first"
    assert blob_store.list_keys("claims/") == ["claims/v0001"]  # no partial file left behind


def test_of_writers_racing_for_one_key_exactly_one_wins(blob_store):
    from concurrent.futures import ThreadPoolExecutor

    def claim(writer: int) -> bool:
        try:
            blob_store.create_bytes("claims/race", str(writer).encode())
            return True
        except FileExistsError:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(claim, range(8)))
    assert won.count(True) == 1
    assert blob_store.read_bytes("claims/race") == str(won.index(True)).encode()


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (lambda store: store.read_bytes("champions/current.json"), "cannot read gs://models-bucket/skinseg/champions/current.json"),
        (lambda store: store.list_keys("champions/"), "cannot read gs://models-bucket/skinseg/champions/\\*"),
    ],
    ids=["read_bytes", "list_keys"],
)
def test_a_read_during_a_gcs_outage_is_retried_for_read_retry_seconds_then_unavailable(monkeypatch, read, message):
    """What the prediction service tells apart from a missing or altered model: the store cannot be read."""
    with gcs_in_an_outage() as (endpoint, answered):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        store = GCSBlobStore(gcs=LazyGCSResource(project="skinseg-test"), bucket="models-bucket", prefix="skinseg", read_retry_seconds=2)
        with pytest.raises(BlobStoreUnavailableError, match=message) as raised:
            read(store)
    assert len(answered) >= 2, f"retried before giving up: {answered}"
    # The store's 2 s, not the client library's own 120 s, ended the retries.
    assert "Timeout of 2.0s exceeded" in str(raised.value) and "503" in str(raised.value)
    assert isinstance(raised.value, OSError)


def test_the_pipelines_store_keeps_the_client_librarys_retry_limit():
    from google.cloud.storage.retry import DEFAULT_RETRY

    store = GCSBlobStore(gcs=LazyGCSResource(), bucket="models-bucket")
    assert store.read_retry_seconds == DEFAULT_RETRY.timeout == 120
