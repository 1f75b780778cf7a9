"""landing_zone_sensor: each landed file becomes a partition and one run, exactly once."""

import json
import os
import re
import shutil
from pathlib import Path

import dagster as dg
import pytest

from skinseg_assets.definitions import build_definitions
from skinseg_assets.partitions import pixel_batches
from skinseg_assets.pixels.batches import BUNDLED_BATCH
from skinseg_assets.resources.blob_store import LazyGCSResource
from skinseg_assets.resources.landing_zone import LandingZone
from skinseg_assets.sensors import bundled_batch
from skinseg_assets_tests.helpers import land_file, tick_landing_zone_sensor

ROWS = "74\t85\t123\t1\n10\t20\t30\t2\n"


@pytest.fixture
def zone(tmp_path):
    return LandingZone(uri=str(tmp_path / "landing"), gcs=LazyGCSResource())


def run_keys(result):
    return sorted(request.run_key for request in result.run_requests)


def test_first_tick_takes_the_bundled_batch_and_every_landed_file(instance, zone, tmp_path):
    land_file(tmp_path / "landing", "day-1.txt", ROWS)
    land_file(tmp_path / "landing", "nested/Day 2.csv", ROWS.replace("\t", ","))
    result = tick_landing_zone_sensor(instance, zone)
    partitions = {request.partition_key for request in result.run_requests}
    # A safe key for an awkward name, the same in every release (a changed key would ingest the file again).
    assert partitions == {BUNDLED_BATCH, "day-1.txt", "nested_day_2.csv-f862eb23"}
    assert set(instance.get_dynamic_partitions(pixel_batches.name)) == partitions
    cursor = json.loads(result.cursor)
    assert set(cursor) == partitions
    assert all(request.tags["skinseg/source"] for request in result.run_requests)


def test_a_second_tick_over_the_same_files_requests_nothing(instance, zone, tmp_path):
    land_file(tmp_path / "landing", "day-1.txt", ROWS)
    first = tick_landing_zone_sensor(instance, zone)
    second = tick_landing_zone_sensor(instance, zone, cursor=first.cursor)
    assert second.run_requests == []
    assert second.dynamic_partitions_requests == []
    assert second.cursor == first.cursor


def test_a_replaced_file_runs_once_more_under_the_same_partition(instance, zone, tmp_path):
    land_file(tmp_path / "landing", "day-1.txt", ROWS)
    first = tick_landing_zone_sensor(instance, zone)
    land_file(tmp_path / "landing", "day-1.txt", ROWS + "1\t2\t3\t2\n", age_seconds=30)  # new content, new size and mtime
    second = tick_landing_zone_sensor(instance, zone, cursor=first.cursor)
    assert [request.partition_key for request in second.run_requests] == ["day-1.txt"]
    assert second.run_requests[0].run_key not in run_keys(first)
    assert second.dynamic_partitions_requests == []  # the partition already exists
    third = tick_landing_zone_sensor(instance, zone, cursor=second.cursor)
    assert third.run_requests == []



def test_a_chmod_counts_as_a_change(instance, zone, tmp_path):
    """As the README says: the identity includes the inode change time, which a chmod moves."""
    path = Path(land_file(tmp_path / "landing", "day-1.txt", ROWS))
    first = tick_landing_zone_sensor(instance, zone)
    before = path.stat()
    path.chmod(0o600)
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_ctime_ns != before.st_ctime_ns
    second = tick_landing_zone_sensor(instance, zone, cursor=first.cursor)
    assert [request.partition_key for request in second.run_requests] == ["day-1.txt"]
    assert second.run_requests[0].run_key.startswith("day-1.txt#2@")


def _restore_by_setting_the_mtime_back(path: Path, content: str, mtime_ns: int, backup: Path) -> None:
    land_file(path.parent, path.name, content)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def _restore_by_copying_with_its_times(path: Path, content: str, mtime_ns: int, backup: Path) -> None:
    shutil.copy2(backup, path)  # cp -p, rsync -a


def _restore_by_moving_back(path: Path, content: str, mtime_ns: int, backup: Path) -> None:
    os.replace(backup, path)  # mv


@pytest.mark.parametrize(
    "restore",
    [_restore_by_setting_the_mtime_back, _restore_by_copying_with_its_times, _restore_by_moving_back],
    ids=["utime", "cp-p", "mv"],
)
def test_a_file_restored_with_its_old_size_and_mtime_runs_again_under_a_new_run_key(instance, zone, tmp_path, restore):
    # v1, a bad v2, then v1 back from a backup. Dagster skips for good a run request whose run key
    # already has a run (and the cursor moves on), so the restore needs a run key of its own.
    path = Path(land_file(tmp_path / "landing", "day-1.txt", ROWS))
    backup = tmp_path / "backup-day-1.txt"
    shutil.copy2(path, backup)
    v1 = path.stat()
    first = tick_landing_zone_sensor(instance, zone)
    land_file(tmp_path / "landing", "day-1.txt", ROWS + "1\t2\t3\t2\n", age_seconds=30)
    second = tick_landing_zone_sensor(instance, zone, cursor=first.cursor)
    assert [request.partition_key for request in second.run_requests] == ["day-1.txt"]

    restore(path, ROWS, v1.st_mtime_ns, backup)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (v1.st_size, v1.st_mtime_ns)
    third = tick_landing_zone_sensor(instance, zone, cursor=second.cursor)
    assert [request.partition_key for request in third.run_requests] == ["day-1.txt"]
    run_key = third.run_requests[0].run_key
    assert run_key not in run_keys(first) + run_keys(second)
    assert re.fullmatch(r"day-1\.txt#3@size:\d+:mtime_ns:\d+:ctime_ns:\d+", run_key)  # readable in the UI

    cursor = third.cursor
    for _ in range(3):  # unchanged from here on: never a second request
        again = tick_landing_zone_sensor(instance, zone, cursor=cursor)
        assert again.run_requests == []
        assert again.cursor == cursor
        cursor = again.cursor


def test_a_cursor_written_before_the_request_count_neither_fails_nor_runs_anything_again(instance, zone, tmp_path):
    # An existing deployment's cursor: batch -> identity, local identities without the change time.
    path = Path(land_file(tmp_path / "landing", "day-1.txt", ROWS))
    stat = path.stat()
    legacy_identity = f"size:{stat.st_size}:mtime_ns:{stat.st_mtime_ns}"
    legacy_cursor = json.dumps({BUNDLED_BATCH: bundled_batch().identity, "day-1.txt": legacy_identity})
    first = tick_landing_zone_sensor(instance, zone, cursor=legacy_cursor)
    assert first.run_requests == []
    second = tick_landing_zone_sensor(instance, zone, cursor=first.cursor)
    assert second.run_requests == []
    assert second.cursor == first.cursor

    land_file(tmp_path / "landing", "day-1.txt", ROWS + "1\t2\t3\t2\n", age_seconds=30)
    third = tick_landing_zone_sensor(instance, zone, cursor=second.cursor)
    assert [request.partition_key for request in third.run_requests] == ["day-1.txt"]
    run_key = third.run_requests[0].run_key
    assert run_key == f"day-1.txt#2@{zone.find('day-1.txt').identity}"  # the second version, as landed now


def test_the_bundled_batch_already_ingested_by_training_job_is_not_ingested_again(data_dir, instance, zone, tmp_path):
    ingested = build_definitions().resolve_job_def("training_job").execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(key) for key in ("raw_skin_pixels", "validated_skin_pixels", "rejected_skin_pixels")],
    )
    assert ingested.success
    land_file(tmp_path / "landing", "day-1.txt", ROWS)
    first = tick_landing_zone_sensor(instance, zone)
    assert [request.partition_key for request in first.run_requests] == ["day-1.txt"]
    assert json.loads(first.cursor)[BUNDLED_BATCH] == {"identity": bundled_batch().identity, "requests": 0}
    assert tick_landing_zone_sensor(instance, zone, cursor=first.cursor).run_requests == []


@pytest.mark.parametrize(
    "name",
    [".day-1.txt", "day-1.txt.tmp", "day-1.txt.part", "_day-1.txt", "day-1.txt~", "notes.md",
     ".staging/day-1.txt", "_temporary/0/task_1/part-00000.csv",  # staged by a writer, renamed when done
     "day-1.txt.download/day-1.txt"],  # a browser's download bundle, still arriving
)
def test_hidden_temporary_and_foreign_files_are_not_taken(instance, zone, tmp_path, name):
    land_file(tmp_path / "landing", name, ROWS)
    result = tick_landing_zone_sensor(instance, zone)
    assert [request.partition_key for request in result.run_requests] == [BUNDLED_BATCH]


def test_a_file_still_being_written_waits_for_a_later_tick(instance, tmp_path):
    zone = LandingZone(uri=str(tmp_path / "landing"), gcs=LazyGCSResource(), settle_seconds=30)
    land_file(tmp_path / "landing", "day-1.txt", ROWS, age_seconds=0)
    first = tick_landing_zone_sensor(instance, zone)
    assert [request.partition_key for request in first.run_requests] == [BUNDLED_BATCH]
    land_file(tmp_path / "landing", "day-1.txt", ROWS, age_seconds=60)
    second = tick_landing_zone_sensor(instance, zone, cursor=first.cursor)
    assert [request.partition_key for request in second.run_requests] == ["day-1.txt"]


def test_a_failing_tick_raises_and_the_next_one_from_the_last_cursor_loses_nothing(instance, tmp_path):
    class BrokenZone(LandingZone):
        def list_files(self, *args, **kwargs):
            raise ConnectionError("bucket unreachable")

    landing = tmp_path / "landing"
    land_file(landing, "day-1.txt", ROWS)
    working = LandingZone(uri=str(landing), gcs=LazyGCSResource())
    good = tick_landing_zone_sensor(instance, working)
    land_file(landing, "day-2.txt", ROWS)  # lands while the zone is unreachable
    broken = BrokenZone(uri=str(landing), gcs=LazyGCSResource())
    with pytest.raises(ConnectionError, match="bucket unreachable"):
        tick_landing_zone_sensor(instance, broken, cursor=good.cursor)
    # The daemon keeps the last good cursor: the next tick takes what landed meanwhile, and only that.
    after = tick_landing_zone_sensor(instance, working, cursor=good.cursor)
    assert [request.partition_key for request in after.run_requests] == ["day-2.txt"]


def test_many_files_are_taken_over_several_ticks_without_loss(instance, zone, tmp_path, monkeypatch):
    monkeypatch.setattr("skinseg_assets.sensors.MAX_BATCHES_PER_TICK", 3)
    for number in range(7):
        land_file(tmp_path / "landing", f"part-{number}.txt", ROWS)
    cursor, taken = None, []
    for _ in range(4):
        result = tick_landing_zone_sensor(instance, zone, cursor=cursor)
        taken += [request.partition_key for request in result.run_requests]
        cursor = result.cursor
    assert sorted(taken) == sorted([BUNDLED_BATCH] + [f"part-{number}.txt" for number in range(7)])


def test_the_sensor_reads_a_gcs_landing_zone(instance, gcs_bucket):
    landing = f"gs://{gcs_bucket}/landing"
    land_file(landing, "day-1.txt", ROWS)
    land_file(landing, "day-2.txt.tmp", ROWS)
    land_file(f"gs://{gcs_bucket}/elsewhere", "day-3.txt", ROWS)
    zone = LandingZone(uri=landing, gcs=LazyGCSResource())
    first = tick_landing_zone_sensor(instance, zone)
    assert sorted(request.partition_key for request in first.run_requests) == sorted([BUNDLED_BATCH, "day-1.txt"])
    land_file(landing, "day-1.txt", ROWS + ROWS)  # a new generation
    second = tick_landing_zone_sensor(instance, zone, cursor=first.cursor)
    assert [request.partition_key for request in second.run_requests] == ["day-1.txt"]
    assert "generation:" in second.run_requests[0].run_key


def test_a_requested_batch_is_found_even_while_its_file_is_being_replaced(tmp_path):
    zone = LandingZone(uri=str(tmp_path / "landing"), gcs=LazyGCSResource(), settle_seconds=30)
    land_file(tmp_path / "landing", "day-1.txt", ROWS, age_seconds=0)  # rewritten just now
    assert zone.list_files() == []  # the sensor waits for it to settle...
    assert zone.find("day-1.txt").name == "day-1.txt"  # ...but a run already asked for it reads it
