"""Batches: one landed pixel file each. Keys, which names count as landed, and content identity."""

import hashlib
import re
from dataclasses import dataclass

# The UCI file shipped in the package is always the first batch.
BUNDLED_BATCH = "uci_skin_segmentation"

PIXEL_FILE_SUFFIXES = (".txt", ".tsv", ".csv", ".parquet")
# Names that editors, uploaders and copy tools use for files still being written.
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".swp", ".lock", "~")
MAX_BATCH_KEY_LENGTH = 100


@dataclass(frozen=True)
class LandedFile:
    """A file in the landing zone: its name relative to the zone, and what identifies its content."""

    name: str
    uri: str
    identity: str  # GCS generation, or size + mtime locally: changes whenever the content is replaced

    @property
    def batch(self) -> str:
        return batch_key(self.name)


def is_pixel_file_name(name: str) -> bool:
    """Whether a landing-zone name is a finished pixel file (not hidden, temporary or foreign)."""
    base = name.rsplit("/", 1)[-1]
    if not base or base.startswith((".", "_", "~")):
        return False
    lowered = base.lower()
    if lowered.endswith(IN_PROGRESS_SUFFIXES):
        return False
    return lowered.endswith(PIXEL_FILE_SUFFIXES)


def batch_key(name: str) -> str:
    """A partition key for a landed file name: lower-case letters, digits, '_', '-' and '.' only.

    A clean name is its own key. Otherwise path separators, quotes, spaces and anything else SQL
    or a URL could read specially become '_', and a short hash of the original name is appended
    so that two names never share a key ('Day 1.txt' and 'day_1.txt' stay apart).
    """
    cleaned = re.sub(r"[^a-z0-9_.-]+", "_", name.strip().lower()).strip("._-")
    if not cleaned:
        cleaned = "batch"
    if cleaned == name and len(name) <= MAX_BATCH_KEY_LENGTH and name != BUNDLED_BATCH:
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned[: MAX_BATCH_KEY_LENGTH - 9]}-{digest}"


@dataclass(frozen=True)
class BatchRequest:
    batch: str
    identity: str
    uri: str

    @property
    def run_key(self) -> str:
        # Name plus content identity: the same file is run once; a replaced file runs again.
        return f"{self.batch}@{self.identity}"


@dataclass(frozen=True)
class TickPlan:
    new_partitions: list[str]
    requests: list[BatchRequest]
    cursor: dict[str, str]
    waiting: int  # files left for later ticks


def plan_tick(
    landed: list[BatchRequest], seen: dict[str, str], existing_partitions: set[str], max_requests: int
) -> TickPlan:
    """What one sensor tick does: which batches to register and run, and the cursor after it.

    `seen` maps batch -> the identity already requested. The cursor only advances for the
    requests this tick makes, so files past `max_requests` are taken by later ticks.
    """
    changed = [request for request in landed if seen.get(request.batch) != request.identity]
    requests = changed[:max_requests]
    cursor = dict(seen)
    for request in requests:
        cursor[request.batch] = request.identity
    new_partitions = sorted({request.batch for request in requests} - existing_partitions)
    return TickPlan(new_partitions=new_partitions, requests=requests, cursor=cursor, waiting=len(changed) - len(requests))
