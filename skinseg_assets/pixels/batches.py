"""Batches: one landed pixel file each. Keys, which names count as landed, and content identity."""

import hashlib
import json
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
    # GCS generation, or size + mtime + ctime locally: changes whenever the content is replaced. It may
    # come back to an earlier value (a restored file, a rolled-back snapshot), so it is not a run key.
    identity: str

    @property
    def batch(self) -> str:
        return batch_key(self.name)


def is_pixel_file_name(name: str) -> bool:
    """Whether a landing-zone name is a finished pixel file (not hidden, temporary or foreign).

    A hidden or temporary folder anywhere on the path counts too: writers stage files there
    (`.staging/`, Spark's and Hadoop's `_temporary/`) and rename them into place when done.
    """
    *folders, base = name.split("/")
    if not base or not all(is_pixel_folder_name(part) for part in [*folders, base] if part):
        return False
    return base.lower().endswith(PIXEL_FILE_SUFFIXES)


def is_pixel_folder_name(name: str) -> bool:
    """Whether a folder (or file) name may hold finished pixel files: not hidden, staging or in progress
    (a browser's `day.txt.download/` bundle holds a file still arriving)."""
    return not name.startswith((".", "_", "~")) and not name.lower().endswith(IN_PROGRESS_SUFFIXES)


def is_utf8(name: str) -> bool:
    """Whether a file name read from the file system is valid UTF-8 (Python keeps other bytes as
    lone surrogates, which no tag, log or database text can hold)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def batch_key(name: str) -> str:
    """A partition key for a landed file name: lower-case letters, digits, '_', '-' and '.' only.

    A clean name is its own key. Otherwise path separators, quotes, spaces, anything else SQL or a
    URL could read specially, and runs of three dots (Dagster's partition-range separator) become
    '_', and a short hash of the original name is appended so that two names almost never share a
    key ('Day 1.txt' and 'day_1.txt' stay apart). Names over
    100 characters are cut, so two long names can (rarely) meet: the landing zone then takes the
    first by name and names the other (`LandingZone.list_files`).
    """
    # "..." separates the ends of a partition range in Dagster's CLI and UI: never inside a key.
    cleaned = re.sub(r"[^a-z0-9_.-]+", "_", name.strip().lower())
    cleaned = re.sub(r"\.{3,}", "_", cleaned).strip("._-")
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
    request: int = 1  # the how-many-th run request for this batch this is

    @property
    def run_key(self) -> str:
        # Dagster skips, for good, a run request whose run key already has a run: the count makes
        # each request for a batch unique, even when its file comes back with an identity seen before
        # (e.g. day-1.txt#3@size:...: v1, v2, then v1 restored). The identity keeps it readable.
        return f"{self.batch}#{self.request}@{self.identity}"


# The identity a cursor entry holds for a batch whose file left before it was read: any file that
# lands under its name later counts as new.
NOTHING_TAKEN = ""


@dataclass(frozen=True)
class Seen:
    """What the cursor records for a batch: the identity last requested, and how many requests so far."""

    identity: str
    requests: int


def same_version(seen_identity: str, identity: str) -> bool:
    """Whether `identity` is the version `seen_identity` was taken for.

    Cursors written before local identities had the inode change time hold `size:S:mtime_ns:M`;
    the same file now reads `size:S:mtime_ns:M:ctime_ns:C`. It counts as seen: an upgrade does not
    ingest every file again.
    """
    if seen_identity == identity:
        return True
    legacy_local = seen_identity.startswith("size:") and ":ctime_ns:" not in seen_identity
    return legacy_local and identity.startswith(f"{seen_identity}:ctime_ns:")


def read_cursor(text: str | None) -> dict[str, Seen]:
    """The sensor cursor: batch -> Seen. Also reads the older form, batch -> identity.

    An older entry counts as one request: its run keys (`batch@identity`) have no `#`, which batch
    keys never contain, so they never clash with the ones made from here on.
    """
    seen = {}
    for batch, entry in (json.loads(text) if text else {}).items():
        if isinstance(entry, str):
            seen[batch] = Seen(identity=entry, requests=1)
        else:
            seen[batch] = Seen(identity=entry["identity"], requests=int(entry["requests"]))
    return seen


def write_cursor(seen: dict[str, Seen]) -> str:
    return json.dumps(
        {batch: {"identity": entry.identity, "requests": entry.requests} for batch, entry in seen.items()},
        sort_keys=True,
    )


@dataclass(frozen=True)
class TickPlan:
    new_partitions: list[str]
    requests: list[BatchRequest]
    cursor: dict[str, Seen]
    waiting: int  # files left for later ticks


def plan_tick(
    landed: list[BatchRequest], seen: dict[str, Seen], existing_partitions: set[str], max_requests: int
) -> TickPlan:
    """What one sensor tick does: which batches to register and run, and the cursor after it.

    `seen` maps batch -> the identity last requested and the number of requests so far. Entries
    stay after their file is gone, so a file landed again under the same name continues the count.
    The cursor only advances for the requests this tick makes, so files past `max_requests` are
    taken by later ticks.
    """
    cursor = dict(seen)
    changed = []
    for landed_batch in landed:
        previous = seen.get(landed_batch.batch)
        if previous is None:
            changed.append(landed_batch)
        elif same_version(previous.identity, landed_batch.identity):
            # Unchanged; an older cursor entry takes the current form of the identity.
            cursor[landed_batch.batch] = Seen(identity=landed_batch.identity, requests=previous.requests)
        else:
            changed.append(landed_batch)
    requests = []
    for landed_batch in changed[:max_requests]:
        previous = seen.get(landed_batch.batch)
        request = BatchRequest(
            batch=landed_batch.batch,
            identity=landed_batch.identity,
            uri=landed_batch.uri,
            request=(previous.requests if previous else 0) + 1,
        )
        requests.append(request)
        cursor[request.batch] = Seen(identity=request.identity, requests=request.request)
    new_partitions = sorted({request.batch for request in requests} - existing_partitions)
    return TickPlan(new_partitions=new_partitions, requests=requests, cursor=cursor, waiting=len(changed) - len(requests))
