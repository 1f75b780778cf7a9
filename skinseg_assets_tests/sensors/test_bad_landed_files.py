"""Bad files dropped in the landing zone: a clear message each, nothing lost, other batches unharmed."""

import logging

import dagster as dg
import pytest

from skinseg_assets.definitions import build_definitions
from skinseg_assets.partitions import PARTITION_TAG
from skinseg_assets.pixels.batches import BUNDLED_BATCH
from skinseg_assets.pixels.source import read_bundled_uci
from skinseg_assets_tests.helpers import check_evaluation, land_file, tick_landing_zone_sensor

GOOD = "74\t85\t123\t1\n10\t20\t30\t2\n200\t210\t220\t2\n"

# name -> (content, what the run reports: (asset or check, text), data lines in the file)
BAD_FILES = {
    "empty.txt": (b"", ("raw_skin_pixels", "empty.txt: is empty: no pixel rows"), 0),
    "header-only.csv": (b"B,G,R,label\n", ("raw_skin_pixels", "has a header ('B,G,R,label') but no pixel rows"), 0),
    "non-numeric.txt": (b"74\t85\t123\t1\nab\t85\t123\t1\n", ("validated_pixels_schema", "line 2: B='ab' is not a whole number [not_an_integer]"), 2),
    "out-of-range.txt": (b"74\t85\t123\t1\n74\t856\t123\t1\n", ("validated_pixels_schema", "line 2: G='856' is outside 0-255 [out_of_range]"), 2),
    "wrong-labels.txt": (b"74\t85\t123\t1\n74\t85\t123\t0\n", ("validated_pixels_schema", "line 2: label='0' is neither 1 (skin) nor 2 (non-skin) [unknown_label]"), 2),
    "missing-column.txt": (b"74\t85\t1\n", ("raw_skin_pixels", "line 1 has 3 fields, expected 4 (B, G, R, label): a column is missing"), 1),
    "wrong-delimiter.txt": (b"74;85;123;1\n", ("raw_skin_pixels", "line 1 is separated by semicolons"), 1),
}


def ingest_landed(instance, defs):
    """One sensor tick, then each requested run executed here as the daemon would launch it."""
    result = tick_landing_zone_sensor(instance, defs.resources["landing_zone"])
    job = defs.resolve_job_def("ingest_batch_job")
    runs = {}
    for request in result.run_requests:
        if request.partition_key == BUNDLED_BATCH:
            continue
        runs[request.partition_key] = job.execute_in_process(
            instance=instance, partition_key=request.partition_key, raise_on_error=False, tags=request.tags
        )
    return runs


def rows_kept(defs, instance, batch):
    validated = defs.load_asset_value("validated_skin_pixels", instance=instance, partition_key=batch)
    rejected = defs.load_asset_value("rejected_skin_pixels", instance=instance, partition_key=batch)
    return len(validated), rejected


def ingest_original_then_land_copy(landing, instance):
    """day-1.txt landed and ingested, then a copy of it landed as day-1-again.txt; returns the Definitions."""
    land_file(landing, "day-1.txt", GOOD)
    defs = build_definitions()
    assert ingest_landed(instance, defs)["day-1.txt"].success
    land_file(landing, "day-1-again.txt", GOOD)
    return defs


@pytest.fixture
def landing(data_dir):
    directory = data_dir / "landing"
    directory.mkdir(parents=True)
    return directory


def test_each_bad_file_is_reported_clearly_and_the_good_one_still_lands(landing, instance):
    for name, (content, _, _) in BAD_FILES.items():
        land_file(landing, name, content)
    land_file(landing, "good.txt", GOOD)
    defs = build_definitions()
    runs = ingest_landed(instance, defs)
    assert set(runs) == {*BAD_FILES, "good.txt"}
    assert runs["good.txt"].success
    assert rows_kept(defs, instance, "good.txt")[0] == 3
    for name, (content, (where, message), data_lines) in BAD_FILES.items():
        run = runs[name]
        assert not run.success, name
        if where == "raw_skin_pixels":
            failure = run.failure_data_for_node("raw_skin_pixels")
            assert message in failure.error.message and name in failure.error.message, name
        else:
            check = check_evaluation(run, where)
            assert not check.passed
            assert message in check.metadata["Rejected rows (first 20)"].value, name
            validated_rows, rejected = rows_kept(defs, instance, name)
            assert validated_rows + len(rejected) == data_lines, name  # nothing lost
        assert (landing / name).read_bytes() == content  # the landing zone is never changed


def test_a_truncated_last_line_is_quarantined_and_the_batch_passes(landing, instance):
    land_file(landing, "truncated.txt", GOOD * 40 + "74\t85")
    defs = build_definitions()
    run = ingest_landed(instance, defs)["truncated.txt"]
    assert run.success
    validated_rows, rejected = rows_kept(defs, instance, "truncated.txt")
    assert validated_rows == 120 and len(rejected) == 1
    assert rejected.loc[0, "reasons"].endswith("line 121: the line has fewer than 4 fields [wrong_field_count]")
    assert (rejected.loc[0, "B"], rejected.loc[0, "G"]) == ("74", "85")


def test_a_file_with_the_content_of_an_earlier_batch_is_a_duplicate_not_counted_twice(landing, instance):
    defs = ingest_original_then_land_copy(landing, instance)
    run = ingest_landed(instance, defs)["day-1-again.txt"]
    assert run.success  # a duplicate is reported, not an error
    raw = run.asset_materializations_for_node("raw_skin_pixels")[0].metadata
    assert raw["Duplicate of"].value == "day-1.txt"
    validated_rows, rejected = rows_kept(defs, instance, "day-1-again.txt")
    assert validated_rows == 0 and len(rejected) == 3
    assert set(rejected["rules"]) == {"duplicate_batch"}
    assert "the file has the same content as batch day-1.txt" in rejected.loc[0, "reasons"]
    # One warning says so; the rows are not also reported as bad rows rejected.
    warnings = [record.user_message for record in instance.all_logs(run.run_id) if record.level == logging.WARNING]
    assert [message for message in warnings if "day-1-again.txt" in message] == [
        f"{landing}/day-1-again.txt has the same content as batch day-1.txt; it will not be counted twice"
    ]


def test_the_first_batch_ingested_again_after_its_duplicate_keeps_its_rows(landing, instance):
    defs = ingest_original_then_land_copy(landing, instance)
    assert ingest_landed(instance, defs)["day-1-again.txt"].success
    again = defs.resolve_job_def("ingest_batch_job").execute_in_process(instance=instance, partition_key="day-1.txt")
    raw = again.asset_materializations_for_node("raw_skin_pixels")[0].metadata
    assert raw["Duplicate of"].value == "none"  # the copy is the duplicate, not the original
    assert rows_kept(defs, instance, "day-1.txt")[0] == 3
    assert rows_kept(defs, instance, "day-1-again.txt")[0] == 0


def test_a_ten_times_larger_file_is_ingested_whole(landing, instance):
    uci = read_bundled_uci().content
    land_file(landing, "uci-times-ten.txt", uci * 10)
    defs = build_definitions()
    run = ingest_landed(instance, defs)["uci-times-ten.txt"]
    assert run.success
    metadata = run.asset_materializations_for_node("raw_skin_pixels")[0].metadata
    assert metadata["Rows"].value == 2_450_570
    validated = run.asset_materializations_for_node("validated_and_rejected_skin_pixels")
    rows = next(m for m in validated if m.asset_key.path == ["validated_skin_pixels"]).metadata["Rows"].value
    assert rows == 2_450_570


class SensorDaemon:
    """Ticks of the landing-zone sensor, each with the previous tick's cursor, and its requested runs
    executed here as the daemon would launch them."""

    def __init__(self, instance):
        self.instance = instance
        self.defs = build_definitions()
        self.cursor = None

    def tick(self):
        result = tick_landing_zone_sensor(self.instance, self.defs.resources["landing_zone"], self.cursor)
        self.cursor = result.cursor
        return result

    def run(self, request):
        return self.defs.resolve_job_def("ingest_batch_job").execute_in_process(
            instance=self.instance, partition_key=request.partition_key, tags=request.tags, raise_on_error=False
        )

    def tick_and_run(self) -> dict:
        """One tick and its runs (the bundled batch's left out); run key -> run."""
        return {request.run_key: self.run(request) for request in self.tick().run_requests if request.partition_key != BUNDLED_BATCH}


def land_copy_then_replace_its_original(landing, daemon: SensorDaemon) -> None:
    land_file(landing, "day-1.txt", GOOD)
    assert [key.split("#")[0] for key in daemon.tick_and_run()] == ["day-1.txt"]
    land_file(landing, "day-1-again.txt", GOOD)
    assert [key.split("#")[0] for key in daemon.tick_and_run()] == ["day-1-again.txt"]
    assert rows_kept(daemon.defs, instance=daemon.instance, batch="day-1-again.txt")[0] == 0  # a duplicate
    assert daemon.tick_and_run() == {}  # its original still holds its content: nothing to re-check
    land_file(landing, "day-1.txt", "1\t2\t3\t2\n")  # the original's file is replaced
    assert [key.split("#")[0] for key in daemon.tick_and_run()] == ["day-1.txt"]


def test_a_copy_counts_again_once_its_original_file_is_replaced(landing, instance):
    daemon = SensorDaemon(instance)
    land_copy_then_replace_its_original(landing, daemon)
    recheck = daemon.tick_and_run()
    assert len(recheck) == 1
    key, run = next(iter(recheck.items()))
    assert key.startswith("day-1-again.txt#recheck@day-1.txt@") and run.success
    assert run.asset_materializations_for_node("raw_skin_pixels")[0].metadata["Duplicate of"].value == "none"
    assert rows_kept(daemon.defs, instance, "day-1-again.txt")[0] == 3  # its rows count again
    assert daemon.tick_and_run() == {}


def test_a_recheck_reads_only_the_version_of_the_copy_listed_when_it_was_requested(landing, instance):
    daemon = SensorDaemon(instance)
    land_copy_then_replace_its_original(landing, daemon)
    (recheck,) = [request for request in daemon.tick().run_requests if "#recheck@" in request.run_key]
    land_file(landing, "day-1-again.txt", GOOD[:15], age_seconds=None)  # half rewritten when the re-check starts
    run = daemon.run(recheck)
    assert not run.success
    assert "day-1-again.txt: changed since this run was requested" in run.failure_data_for_node("raw_skin_pixels").error.message


def test_a_copy_whose_own_file_changed_in_the_same_tick_is_run_once_not_also_rechecked(landing, instance):
    daemon = SensorDaemon(instance)
    land_copy_then_replace_its_original(landing, daemon)
    land_file(landing, "day-1-again.txt", GOOD + "5\t6\t7\t2\n")  # before the tick that would re-check it
    requests = [request for request in daemon.tick().run_requests if request.partition_key == "day-1-again.txt"]
    assert len(requests) == 1 and "#recheck@" not in requests[0].run_key


def test_a_file_renamed_before_its_run_read_it_gives_up_its_batch_and_lands_under_the_new_name(landing, instance, capfd):
    """Left registered, a batch with no rows would hold every retrain back: nothing downstream of
    validated_skin_pixels runs while one of its partitions is missing."""
    daemon = SensorDaemon(instance)
    land_file(landing, "day-1.txt", GOOD)
    land_file(landing, "day-2.txt", GOOD + "1\t2\t3\t2\n")
    first = daemon.tick()
    (landing / "day-2.txt").rename(landing / "day-2-final.txt")
    runs = {request.partition_key: daemon.run(request) for request in first.run_requests if request.partition_key != BUNDLED_BATCH}
    assert runs["day-1.txt"].success and not runs["day-2.txt"].success
    assert "(batch day-2.txt): no landed file has this batch key any more" in runs["day-2.txt"].failure_data_for_node("raw_skin_pixels").error.message

    capfd.readouterr()
    second = daemon.tick()
    assert [request.partition_key for request in second.run_requests] == ["day-2-final.txt"]
    assert "WARNING - batch day-2.txt: its file left the landing zone before a run read it" in capfd.readouterr().err
    partitions = set(instance.get_dynamic_partitions("pixel_batches"))
    assert "day-2.txt" not in partitions and {"day-1.txt", "day-2-final.txt"} <= partitions
    assert daemon.tick().dynamic_partitions_requests == []  # once
    # Added back by hand (for a run with a configured source_uri, say): the sensor leaves it be.
    instance.add_dynamic_partitions("pixel_batches", ["day-2.txt"])
    assert daemon.tick().dynamic_partitions_requests == []

    # The name back, even with its old identity: it is taken again under its old batch.
    (landing / "day-2-final.txt").rename(landing / "day-2.txt")
    assert "day-2.txt" in [request.partition_key for request in daemon.tick().run_requests]
    assert "day-2.txt" in instance.get_dynamic_partitions("pixel_batches")


def test_a_batch_whose_run_is_queued_or_that_was_added_by_hand_keeps_its_partition(landing, instance):
    daemon = SensorDaemon(instance)
    land_file(landing, "day-2.txt", GOOD)
    daemon.tick()
    (landing / "day-2.txt").unlink()
    # Its run has not started yet: it will fail and say why; only then is the partition given up.
    daemon.instance.create_run_for_job(
        daemon.defs.resolve_job_def("ingest_batch_job"), status=dg.DagsterRunStatus.NOT_STARTED, tags={PARTITION_TAG: "day-2.txt"}
    )
    instance.add_dynamic_partitions("pixel_batches", ["by-hand"])  # e.g. for a run with a configured source_uri
    assert daemon.tick().dynamic_partitions_requests == []
    assert {"day-2.txt", "by-hand"} <= set(instance.get_dynamic_partitions("pixel_batches"))


def test_a_copy_whose_file_is_gone_is_not_rechecked(landing, instance):
    defs = ingest_original_then_land_copy(landing, instance)
    assert ingest_landed(instance, defs)["day-1-again.txt"].success  # counted as a copy of day-1.txt
    (landing / "day-1-again.txt").unlink()
    land_file(landing, "day-1.txt", "1\t2\t3\t2\n")
    assert ingest_landed(instance, defs)["day-1.txt"].success  # the original's content changed
    result = tick_landing_zone_sensor(instance, defs.resources["landing_zone"])
    # A run for it would only fail on the missing file.
    assert not [request for request in result.run_requests if "#recheck@" in request.run_key]


def test_tsv_and_parquet_files_land_like_text_files(landing, instance):
    import io

    import pandas as pd

    parquet = io.BytesIO()
    pd.DataFrame({"B": [74, 10], "G": [85, 20], "R": [123, 30], "label": [1, 2]}).to_parquet(parquet)
    land_file(landing, "day-2.tsv", GOOD)
    land_file(landing, "day-3.parquet", parquet.getvalue())
    land_file(landing, "notes.md", "not pixels")  # other names are left alone
    defs = build_definitions()
    runs = ingest_landed(instance, defs)
    assert sorted(runs) == ["day-2.tsv", "day-3.parquet"] and all(run.success for run in runs.values())
    for batch, skin in (("day-2.tsv", [True, False, False]), ("day-3.parquet", [True, False])):
        validated = defs.load_asset_value("validated_skin_pixels", instance=instance, partition_key=batch)
        assert validated["is_skin"].tolist() == skin
    parquet_pixels = defs.load_asset_value("validated_skin_pixels", instance=instance, partition_key="day-3.parquet")
    assert parquet_pixels[["B", "G", "R"]].values.tolist() == [[74, 85, 123], [10, 20, 30]]


def test_a_file_rewritten_after_its_run_was_requested_fails_that_run_and_the_next_tick_takes_it(landing, instance):
    land_file(landing, "day-1.txt", GOOD)
    defs = build_definitions()
    result = tick_landing_zone_sensor(instance, defs.resources["landing_zone"])
    (request,) = [request for request in result.run_requests if request.partition_key == "day-1.txt"]
    land_file(landing, "day-1.txt", GOOD[:15], age_seconds=None)  # half rewritten when the run starts
    run = defs.resolve_job_def("ingest_batch_job").execute_in_process(
        instance=instance, partition_key="day-1.txt", raise_on_error=False, tags=request.tags
    )
    assert not run.success
    assert "day-1.txt: changed since this run was requested" in run.failure_data_for_node("raw_skin_pixels").error.message
    assert (landing / "day-1.txt").read_text() == GOOD[:15]
    land_file(landing, "day-1.txt", GOOD + GOOD)  # finished and settled
    later = tick_landing_zone_sensor(instance, defs.resources["landing_zone"], cursor=result.cursor)
    assert [request.partition_key for request in later.run_requests] == ["day-1.txt"]
