"""LandingZone: what identifies a local file's version."""

import os
import time
from pathlib import Path

from skinseg_assets.resources.blob_store import LazyGCSResource
from skinseg_assets.resources.landing_zone import LandingZone
from skinseg_assets_tests.helpers import land_file

ROWS = "74\t85\t123\t1\n10\t20\t30\t2\n"
RELABELLED = "74\t85\t123\t2\n10\t20\t30\t1\n"  # same size


def identities(zone: LandingZone) -> dict[str, str]:
    return {landed.name: landed.identity for landed in zone.list_files()}


def test_an_unchanged_file_keeps_its_identity(tmp_path):
    zone = LandingZone(uri=str(tmp_path), gcs=LazyGCSResource())
    path = Path(land_file(tmp_path, "day-1.txt", ROWS))
    before = identities(zone)
    zone.read(zone.find("day-1.txt"))
    assert identities(zone) == before
    assert before["day-1.txt"].startswith(f"size:{path.stat().st_size}:mtime_ns:{path.stat().st_mtime_ns}:ctime_ns:")


def test_new_content_with_the_same_size_and_mtime_is_a_new_identity(tmp_path):
    zone = LandingZone(uri=str(tmp_path), gcs=LazyGCSResource())
    path = Path(land_file(tmp_path, "day-1.txt", ROWS))
    old = path.stat()
    before = identities(zone)
    # Replaced, then its size and mtime put back. Its ctime moves on, by as much as the file
    # system's timestamp granularity (the sensor ticks seconds apart): replace until it has.
    deadline = time.monotonic() + 5
    while True:
        land_file(tmp_path, "day-1.txt", RELABELLED)
        os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
        if path.stat().st_ctime_ns != old.st_ctime_ns:
            break
        assert time.monotonic() < deadline, "the file system kept the file's ctime for 5 s"
        time.sleep(0.01)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    assert identities(zone) != before
