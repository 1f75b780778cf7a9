"""Which batches count as originals for duplicate detection, read from the instance's event log."""

import dagster as dg

from skinseg_assets.assets import ingestion
from skinseg_assets.assets.ingestion import duplicate_of, duplicates_to_recheck, original_batch_sha256s
from skinseg_assets.partitions import pixel_batches

RAW = dg.AssetKey("raw_skin_pixels")


def record_raw(instance, batch: str, sha256: str, duplicate_of_batch: str = "none") -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(RAW, partition=batch, metadata={"sha256": sha256, "Duplicate of": duplicate_of_batch})
    )


def test_an_early_original_is_still_found_after_ten_thousand_later_ingests():
    # In memory: 10,001 events on disk would take half a minute; the on-disk store is tested below.
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(pixel_batches.name, ["first", "busy", "copy"])
    record_raw(instance, "first", "aaa")
    for attempt in range(10_001):  # more than any fixed window over the newest events
        record_raw(instance, "busy", f"content-{attempt}")
    assert original_batch_sha256s(instance) == {"first": "aaa", "busy": "content-10000"}
    assert duplicate_of(instance, "copy", "aaa") == "first"


def test_only_each_batch_latest_ingest_counts_and_duplicates_are_not_originals(instance):
    instance.add_dynamic_partitions(pixel_batches.name, ["a", "b", "c"])
    record_raw(instance, "a", "old")
    record_raw(instance, "a", "new")  # the file was replaced
    record_raw(instance, "b", "new", duplicate_of_batch="a")
    record_raw(instance, "c", "other")
    assert original_batch_sha256s(instance) == {"a": "new", "c": "other"}
    assert duplicate_of(instance, "b", "new") == "a"
    assert duplicate_of(instance, "a", "new") is None  # a batch is never a duplicate of itself
    assert duplicate_of(instance, "c", "old") is None  # content replaced since is not an original any more


def test_a_deleted_batch_is_not_an_original(instance):
    instance.add_dynamic_partitions(pixel_batches.name, ["gone", "copy"])
    record_raw(instance, "gone", "same")
    instance.delete_dynamic_partition(pixel_batches.name, "gone")
    assert duplicate_of(instance, "copy", "same") is None


def test_more_batches_than_dagster_fetches_at_once_are_read_in_chunks(instance, monkeypatch):
    # Dagster refuses to fetch more records at once than this; reading all batches in one fetch would fail.
    monkeypatch.setenv("MAX_LIMIT_GET_EVENT_RECORDS", "3")
    monkeypatch.setattr(ingestion, "RECORDS_PER_FETCH", 3)
    batches = [f"batch-{number}" for number in range(8)]
    instance.add_dynamic_partitions(pixel_batches.name, [*batches, "copy"])
    for number, batch in enumerate(batches):
        record_raw(instance, batch, f"content-{number}")
    assert original_batch_sha256s(instance) == {batch: f"content-{number}" for number, batch in enumerate(batches)}
    assert duplicate_of(instance, "copy", "content-7") == "batch-7"


def test_a_copy_is_rechecked_once_each_time_its_original_stops_holding_its_content(instance):
    instance.add_dynamic_partitions(pixel_batches.name, ["a", "b", "c"])
    record_raw(instance, "a", "same")
    record_raw(instance, "b", "same", duplicate_of_batch="a")
    record_raw(instance, "c", "other")
    assert duplicates_to_recheck(instance) == {}  # the original still holds the copy's content

    record_raw(instance, "a", "replaced")  # a's file was replaced: b's rows are no longer counted anywhere
    first = duplicates_to_recheck(instance)
    assert set(first) == {"b"} and first["b"].startswith("a@")
    assert duplicates_to_recheck(instance) == first  # the same change gives the same token (one run key)

    record_raw(instance, "a", "replaced again")
    second = duplicates_to_recheck(instance)
    assert set(second) == {"b"} and second["b"] != first["b"]

    record_raw(instance, "b", "same")  # the re-check ran: b is an original now
    assert duplicates_to_recheck(instance) == {}


def test_a_copy_of_a_deleted_batch_or_of_a_batch_turned_duplicate_is_rechecked(instance):
    instance.add_dynamic_partitions(pixel_batches.name, ["a", "b", "c", "d"])
    record_raw(instance, "a", "one")
    record_raw(instance, "b", "one", duplicate_of_batch="a")
    record_raw(instance, "c", "two")
    record_raw(instance, "d", "two", duplicate_of_batch="c")
    instance.delete_dynamic_partition(pixel_batches.name, "a")
    assert duplicates_to_recheck(instance)["b"].endswith(":deleted") and duplicates_to_recheck(instance)["b"].startswith("a@")
    record_raw(instance, "c", "one", duplicate_of_batch="b")  # c's file now copies b (an original then)
    record_raw(instance, "b", "one", duplicate_of_batch="e")  # and b was since counted a copy of another
    stale = duplicates_to_recheck(instance)
    # b: its original is gone; c: its original is a copy now; d: its original's content changed.
    assert set(stale) == {"b", "c", "d"}
    assert stale["b"] == "e@0:deleted"
    instance.delete_dynamic_partition(pixel_batches.name, "d")
    assert set(duplicates_to_recheck(instance)) == {"b", "c"}  # a deleted copy needs nothing
