"""LandingZone's listing where file systems and writers misbehave: one odd file never stops the others."""

import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from skinseg_assets.assets.ingestion import read_batch
from skinseg_assets.pixels.batches import batch_key
from skinseg_assets.pixels.source import PixelFileError, parse_pixel_file
from skinseg_assets.resources import landing_zone
from skinseg_assets.resources.blob_store import LazyGCSResource
from skinseg_assets.resources.landing_zone import LandingZone
from skinseg_assets_tests.helpers import land_file

ROWS = "74\t85\t123\t1\n10\t20\t30\t2\n"


def local_zone(root: Path | str, **settings) -> LandingZone:
    return LandingZone(uri=str(root), gcs=LazyGCSResource(), **settings)


def listed(zone: LandingZone, **options) -> tuple[list[str], list[str]]:
    warnings = []
    names = [landed.name for landed in zone.list_files(warn=warnings.append, **options)]
    return names, warnings


def test_a_name_that_is_not_utf8_is_named_and_left_while_the_others_are_taken(tmp_path):
    land_file(tmp_path, "day-1.txt", ROWS)
    with open(os.fsencode(tmp_path) + b"/caf\xe9.txt", "wb") as latin1:  # the name a Latin-1 zip file gives
        latin1.write(ROWS.encode())
    os.utime(os.fsencode(tmp_path) + b"/caf\xe9.txt", (time.time() - 60, time.time() - 60))
    zone = local_zone(tmp_path)
    names, warnings = listed(zone)
    assert names == ["day-1.txt"]
    assert len(warnings) == 1 and "caf\\xe9.txt" in warnings[0] and "not UTF-8" in warnings[0]
    assert zone.find("day-1.txt").name == "day-1.txt"
    assert (tmp_path / "day-1.txt").read_text() == ROWS


def test_two_names_with_one_batch_key_the_first_keeps_it_and_the_second_is_named(tmp_path):
    folder = "exports/hospital-a/dermatology/skin-pixel-samples/2024/camera-07/calibrated/white-balanced"
    first, second = f"{folder}/pixels-000000082681.txt", f"{folder}/pixels-000000091883.txt"
    assert batch_key(first) == batch_key(second)  # a prefix cut at 91 characters and a 32-bit hash
    land_file(tmp_path, first, ROWS)
    land_file(tmp_path, second, ROWS + "1\t2\t3\t2\n")
    zone = local_zone(tmp_path)
    names, warnings = listed(zone)
    assert names == [first]
    assert len(warnings) == 1 and second in warnings[0] and "rename one" in warnings[0]
    assert zone.find(batch_key(first)).name == first  # every run reads the same file


def test_a_folder_removed_while_listing_is_skipped_and_an_unreadable_one_fails_the_listing(tmp_path, monkeypatch):
    land_file(tmp_path, "day-1.txt", ROWS)
    land_file(tmp_path, "vanishing/part-0.txt", ROWS)
    land_file(tmp_path, "locked/part-0.txt", ROWS)
    zone = local_zone(tmp_path)
    scandir = os.scandir
    failing = {}

    def scandir_with_failures(path):
        for folder, error in failing.items():
            if os.fspath(path).endswith(folder):
                raise error
        return scandir(path)

    monkeypatch.setattr(os, "scandir", scandir_with_failures)
    failing["vanishing"] = FileNotFoundError(2, "No such file or directory")  # a writer's staging folder, gone
    assert listed(zone)[0] == ["day-1.txt", "locked/part-0.txt"]
    failing["locked"] = PermissionError(13, "Permission denied")
    with pytest.raises(PermissionError):
        zone.list_files()


@pytest.mark.parametrize(
    "mtime_shift", [0, 3 * 3600, -3 * 3600], ids=["just-written", "mtime-three-hours-ahead", "mtime-three-hours-behind"]
)
def test_a_file_is_taken_once_it_has_not_changed_for_two_seconds(tmp_path, monkeypatch, mtime_shift):
    path = Path(land_file(tmp_path, "day-1.txt", ROWS, age_seconds=None))
    if mtime_shift:  # cp -p: the source's modification time, perhaps from a machine whose clock is fast
        shifted = time.time() + mtime_shift
        os.utime(path, (shifted, shifted))
    # When the rule says it last changed: the earlier of its modification and change times (a copy
    # cannot set the change time; a time ahead is another clock's).
    changed = path.stat().st_ctime if mtime_shift > 0 else path.stat().st_mtime
    clock = SimpleNamespace(time=lambda: changed + 1.5)  # the clock the listing reads
    monkeypatch.setattr(landing_zone, "time", clock)
    zone = local_zone(tmp_path)  # the default settle time
    assert listed(zone)[0] == []
    clock.time = lambda: changed + 2.5
    assert listed(zone)[0] == ["day-1.txt"]


def test_a_symbolic_link_to_a_folder_is_not_followed(tmp_path):
    land_file(tmp_path / "landing", "day-1.txt", ROWS)
    land_file(tmp_path / "elsewhere", "day-2.txt", ROWS)
    (tmp_path / "landing" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert listed(local_zone(tmp_path / "landing")) == (["day-1.txt"], [])


def test_a_landing_folder_under_the_home_folder_is_found_as_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    land_file(tmp_path / "landing", "day-1.txt", ROWS)
    assert listed(local_zone("~/landing"))[0] == ["day-1.txt"]


def test_a_symbolic_link_is_read_in_the_format_of_its_own_name(tmp_path):
    import pandas as pd

    cache = tmp_path / "cache" / "3f9a1c0d2e7b"  # a content-addressed cache object (DVC), no suffix
    cache.parent.mkdir()
    pd.DataFrame({"B": [74, 10], "G": [85, 20], "R": [123, 30], "label": [1, 2]}).to_parquet(cache)
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "day-1.parquet").symlink_to(cache)
    zone = local_zone(tmp_path / "landing")
    pixel_file = zone.read(zone.find("day-1.parquet"))
    assert pixel_file.source.endswith("day-1.parquet")
    assert parse_pixel_file(pixel_file).raw[["B", "G", "R", "label"]].values.tolist() == [["74", "85", "123", "1"], ["10", "20", "30", "2"]]


def test_a_run_reads_only_the_version_it_was_requested_for(tmp_path):
    land_file(tmp_path, "day-1.txt", ROWS)
    zone = local_zone(tmp_path)
    requested = zone.find("day-1.txt").identity
    assert read_batch("day-1.txt", "", zone, LazyGCSResource(), requested).content == ROWS.encode()
    land_file(tmp_path, "day-1.txt", ROWS[:9], age_seconds=None)  # being rewritten when the run starts
    with pytest.raises(PixelFileError, match=r"changed since this run was requested \(requested version size:23:.*, now size:9:") as error:
        read_batch("day-1.txt", "", zone, LazyGCSResource(), requested)
    assert error.value.source == str(tmp_path / "day-1.txt")
    # A run nobody requested for a version (from the UI, say) reads what is there.
    assert read_batch("day-1.txt", "", zone, LazyGCSResource()).content == ROWS[:9].encode()


def test_a_symbolic_link_loop_is_named_and_the_other_files_are_taken(tmp_path):
    land_file(tmp_path, "day-1.txt", ROWS)
    (tmp_path / "self.txt").symlink_to("self.txt")
    zone = local_zone(tmp_path)
    names, warnings = listed(zone)
    assert names == ["day-1.txt"]
    assert len(warnings) == 1 and "self.txt is not taken: Too many levels of symbolic links" in warnings[0]
    assert read_batch("day-1.txt", "", zone, LazyGCSResource()).content == ROWS.encode()


def test_the_first_name_keeps_a_shared_batch_key_even_while_it_is_still_being_written(tmp_path):
    """Else the sensor would take the second file and the run, reading by key, the first."""
    folder = "exports/hospital-a/dermatology/skin-pixel-samples/2024/camera-07/calibrated/white-balanced"
    first, second = f"{folder}/pixels-000000082681.txt", f"{folder}/pixels-000000091883.txt"
    land_file(tmp_path, second, ROWS)
    land_file(tmp_path, first, ROWS, age_seconds=None)  # landing now
    zone = local_zone(tmp_path, settle_seconds=30)
    names, warnings = listed(zone)
    assert names == [] and len(warnings) == 1 and second in warnings[0]
    assert zone.find(batch_key(first)).name == first


def test_a_landing_zone_that_is_a_file_fails_the_listing(tmp_path):
    (tmp_path / "landing").write_text(ROWS)
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        local_zone(tmp_path / "landing").list_files()
    assert local_zone(tmp_path / "nothing-yet").list_files() == []


def test_a_run_requested_before_ctime_was_in_identities_reads_the_unchanged_file(tmp_path):
    """A re-executed or retried run copies its parent's tags, perhaps from an older release."""
    path = Path(land_file(tmp_path, "day-1.txt", ROWS))
    older_identity = f"size:{path.stat().st_size}:mtime_ns:{path.stat().st_mtime_ns}"
    assert read_batch("day-1.txt", "", local_zone(tmp_path), LazyGCSResource(), older_identity).content == ROWS.encode()


def test_a_file_rewritten_between_finding_and_reading_it_is_not_read(tmp_path):
    land_file(tmp_path, "day-1.txt", ROWS)
    zone = local_zone(tmp_path)
    landed = zone.find("day-1.txt")
    land_file(tmp_path, "day-1.txt", ROWS[:9], age_seconds=None)
    with pytest.raises(PixelFileError, match="changed since this run was requested"):
        zone.read(landed, version=landed.identity)


def test_on_gcs_a_run_reads_only_the_generation_it_was_requested_for(gcs_bucket):
    landing = f"gs://{gcs_bucket}/landing"
    land_file(landing, "day-1.txt", ROWS)
    zone = LandingZone(uri=landing, gcs=LazyGCSResource())
    requested = zone.find("day-1.txt").identity
    assert requested.startswith("generation:")
    assert read_batch("day-1.txt", "", zone, LazyGCSResource(), requested).content == ROWS.encode()
    land_file(landing, "day-1.txt", ROWS[:9])  # a new generation, between the request and the run
    with pytest.raises(PixelFileError, match=rf"changed since this run was requested \(requested version {requested}, now generation:"):
        read_batch("day-1.txt", "", zone, LazyGCSResource(), requested)


def test_a_gcs_outage_fails_the_listing_naming_the_zone_within_a_sensor_ticks_time(monkeypatch):
    from skinseg_assets.resources.blob_store import BlobStoreUnavailableError
    from skinseg_assets_tests.helpers import gcs_in_an_outage

    with gcs_in_an_outage() as (endpoint, answered):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        zone = LandingZone(uri="gs://landing-bucket/incoming", gcs=LazyGCSResource(), list_retry_seconds=2)
        with pytest.raises(BlobStoreUnavailableError, match=r"cannot read gs://landing-bucket/incoming: Timeout of 2.0s exceeded"):
            zone.list_files()
    assert len(answered) >= 2, f"retried before giving up: {answered}"
    assert LandingZone(uri="gs://b/p", gcs=LazyGCSResource()).list_retry_seconds == 30  # Dagster allows a tick 60 s
