import pytest

from skinseg_assets.resources.blob_store import GCSBlobStore, LazyGCSResource, LocalBlobStore


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
    assert blob_store.exists("a/one.bin") and not blob_store.exists("a/none.bin")
    assert blob_store.list_keys("a/") == ["a/one.bin", "a/two.bin"]
    assert blob_store.list_keys() == ["a/one.bin", "a/two.bin", "b/three.bin"]


def test_missing_blob_names_its_uri(blob_store):
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        blob_store.read_bytes("missing.bin")


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a/../b", "a//b"])
def test_unsafe_keys_are_refused(key, tmp_path):
    with pytest.raises(ValueError, match="relative path"):
        LocalBlobStore(root=str(tmp_path)).write_bytes(key, b"x")


def test_gcs_uri_names_bucket_and_prefix(gcs_bucket):
    store = GCSBlobStore(gcs=LazyGCSResource(), bucket=gcs_bucket, prefix="skinseg")
    assert store.uri("skin_classifier.skops") == f"gs://{gcs_bucket}/skinseg/skin_classifier.skops"
