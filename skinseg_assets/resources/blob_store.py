"""Where models, lookup tables, images and reports live: a local folder or a GCS bucket.

Both stores expose the same small interface, so the IO manager and the assets never ask
which one they have (the deployment picks it, see `skinseg_assets.resources`).
"""

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr


def split_gs_uri(uri: str) -> tuple[str, str]:
    """gs://bucket/some/name -> ("bucket", "some/name")."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bucket, name


class LazyGCSResource(dg.ConfigurableResource):
    """The `gcs` resource: a Google Cloud Storage client from dagster-gcp's `GCSResource`,
    made on first use.

    Every deployment has it (for gs:// sources and landing zones), and the local one must run
    without Google credentials as long as nothing asks for a bucket. dagster-gcp is imported only
    then too: importing it loads BigQuery, Dataproc and IPython (about a thousand modules, 0.4 s
    here, and every later full garbage collection walks their objects) in every run process.
    """

    project: str | None = Field(default=None, description="Google Cloud project of the client")
    _client = PrivateAttr(default=None)

    def get_client(self):
        """The google.cloud.storage.Client (honours STORAGE_EMULATOR_HOST), made once."""
        if self._client is None:
            from dagster_gcp import GCSResource

            self._client = GCSResource(project=self.project).get_client()
        return self._client


class BlobStoreUnavailableError(OSError):
    """The store could not be reached or answered with an error (network, GCS service, credentials)."""


def uri_metadata(uri: str) -> dg.MetadataValue:
    """A stored object's address for the UI, as a path to copy (gs://… or file://…): a browser
    opens neither as a link."""
    return dg.MetadataValue.path(uri)


def stored_images(blob_store: "BlobStore", folder: str, images: dict[str, bytes]) -> dict[str, dg.MetadataValue]:
    """Each PNG kept as `<folder>/<name>.png` in the blob store (a report's images outlive the event
    log, and can be linked to); returns metadata naming where, as "<name> file"."""
    metadata = {}
    for name, png in images.items():
        uri = blob_store.write_bytes(f"{folder}/{name.lower().replace(' ', '-')}.png", png, content_type="image/png")
        metadata[f"{name} file"] = uri_metadata(uri)
    return metadata


class VersionConflictError(RuntimeError):
    """`replace_bytes` found another version under its key than the one it was told to replace."""


class BlobStore(dg.ConfigurableResource):
    """A flat key -> bytes store; keys are '/'-separated relative paths."""

    def write_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Store `data` under `key`; returns the object's URI."""
        raise NotImplementedError

    def create_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Like `write_bytes`, but only if nothing is stored under `key` yet: atomic, so of two
        writers racing for one key exactly one wins; the other gets FileExistsError."""
        raise NotImplementedError

    def read_bytes(self, key: str) -> bytes:
        """The bytes under `key`; FileNotFoundError (naming its URI) if there are none, another
        OSError (BlobStoreUnavailableError for GCS) if the store cannot be read."""
        raise NotImplementedError

    def read_versioned(self, key: str) -> tuple[bytes | None, str]:
        """The bytes under `key` (None if there are none) and a token naming that version, for
        `replace_bytes`; errors as `read_bytes`."""
        raise NotImplementedError

    def replace_bytes(self, key: str, data: bytes, expected_version: str, content_type: str = "application/octet-stream") -> str:
        """Like `write_bytes`, but only if `key` still holds the version `read_versioned` named
        (atomic: of two writers that read the same version, one wins); VersionConflictError if
        not. Returns the new version's token."""
        raise NotImplementedError

    def list_keys(self, prefix: str = "") -> list[str]:
        raise NotImplementedError

    def uri(self, key: str) -> str:
        raise NotImplementedError


NO_VERSION = "none"  # the version token of a key with nothing stored under it


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"blob key {key!r} must be a relative path without '.', '..' or empty parts")
    return key


def _partial_path(path: Path) -> Path:
    """A hidden name to write `path`'s bytes under first, its own for each writer."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")


class LocalBlobStore(BlobStore):
    """Blobs as files under a local folder."""

    root: str = Field(description="Folder that holds the blobs")

    def _path(self, key: str) -> Path:
        return Path(self.root) / _check_key(key)

    def write_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = _partial_path(path)
        partial.write_bytes(data)
        partial.replace(path)  # readers never see half a file
        return self.uri(key)

    def create_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = _partial_path(path)
        partial.write_bytes(data)
        try:
            os.link(partial, path)  # fails if the name exists: the whole file appears at once, or not at all
        except FileExistsError:
            raise FileExistsError(f"{self.uri(key)} already exists") from None
        finally:
            partial.unlink()
        return self.uri(key)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no blob {self.uri(key)}")
        return path.read_bytes()

    def read_versioned(self, key: str) -> tuple[bytes | None, str]:
        try:
            data = self.read_bytes(key)
        except FileNotFoundError:
            return None, NO_VERSION
        return data, hashlib.sha256(data).hexdigest()

    def replace_bytes(self, key: str, data: bytes, expected_version: str, content_type: str = "application/octet-stream") -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Writers of this key take turns on a lock file beside it; readers need no lock (the file
        # is replaced whole).
        with open(path.with_name(f".{path.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read_versioned(key)[1]
            if current != expected_version:
                raise VersionConflictError(f"{self.uri(key)} changed since it was read (another writer)")
            self.write_bytes(key, data, content_type)
        return hashlib.sha256(data).hexdigest()

    def list_keys(self, prefix: str = "") -> list[str]:
        if ".." in prefix.split("/"):
            raise ValueError(f"blob key prefix {prefix!r} must not hold '..'")
        root = Path(self.root)
        # Only the folder the prefix names is walked (not every run's images): "champions/v" walks
        # champions/.
        folder = root / prefix.rpartition("/")[0]
        if not folder.is_dir():
            return []
        keys = (path.relative_to(root).as_posix() for path in folder.rglob("*") if path.is_file())
        return sorted(key for key in keys if key.startswith(prefix) and not Path(key).name.startswith("."))

    def uri(self, key: str) -> str:
        return self._path(key).resolve().as_uri()


# How long google-cloud-storage retries a failing request by default (its DEFAULT_RETRY).
GCS_DEFAULT_RETRY_SECONDS = 120.0


def gcs_patience(retry_seconds: float) -> dict:
    """google-cloud-storage call arguments: retry a failing request for at most `retry_seconds`, and
    wait at most that long (and no longer than the library's 60 s) for one attempt's answer."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    return {"retry": DEFAULT_RETRY.with_timeout(retry_seconds), "timeout": min(retry_seconds, 60.0)}


@contextmanager
def reading_gcs(uri: str) -> Iterator[None]:
    """GCS service and credential errors as BlobStoreUnavailableError naming `uri` (network errors
    are OSErrors already)."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    try:
        yield
    except (GoogleAPIError, GoogleAuthError) as error:
        raise BlobStoreUnavailableError(f"cannot read {uri}: {error}") from error


class GCSBlobStore(BlobStore):
    """Blobs as objects in a GCS bucket, under a prefix."""

    gcs: dg.ResourceDependency[LazyGCSResource]
    bucket: str = Field(min_length=1, description="Bucket that holds the blobs")
    prefix: str = Field(default="skinseg", description="Object name prefix inside the bucket")
    read_retry_seconds: float = Field(
        default=GCS_DEFAULT_RETRY_SECONDS,
        gt=0,
        description="How long a failing read is retried, and one attempt may wait for an answer, before "
        "the store counts as unavailable (google-cloud-storage's default: 120 s)",
    )

    def _bucket(self):
        return self.gcs.get_client().bucket(self.bucket)

    def _name(self, key: str) -> str:
        return f"{self.prefix.strip('/')}/{_check_key(key)}" if self.prefix.strip("/") else _check_key(key)

    def write_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self._bucket().blob(self._name(key)).upload_from_string(data, content_type=content_type)
        return self.uri(key)

    def create_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        from google.api_core.exceptions import PreconditionFailed

        try:
            # Generation 0 means "no live object": GCS itself refuses the upload if one exists.
            self._bucket().blob(self._name(key)).upload_from_string(data, content_type=content_type, if_generation_match=0)
        except PreconditionFailed:
            raise FileExistsError(f"{self.uri(key)} already exists") from None
        return self.uri(key)

    def read_bytes(self, key: str) -> bytes:
        return self._download(key)[0]

    def read_versioned(self, key: str) -> tuple[bytes | None, str]:
        try:
            return self._download(key)
        except FileNotFoundError:
            return None, NO_VERSION

    def replace_bytes(self, key: str, data: bytes, expected_version: str, content_type: str = "application/octet-stream") -> str:
        from google.api_core.exceptions import PreconditionFailed

        blob = self._bucket().blob(self._name(key))
        generation = 0 if expected_version == NO_VERSION else int(expected_version)  # 0: no live object
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=generation)
        except PreconditionFailed:
            # The client retries a conditional upload whose answer it did not get: if the first try
            # was done, the retry finds the version it replaced gone. Its own bytes there mean done.
            stored, stored_generation = self.read_versioned(key)
            if stored == data:
                return stored_generation
            raise VersionConflictError(f"{self.uri(key)} changed since it was read (another writer)") from None
        return str(blob.generation)

    def _download(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and its generation."""
        from google.api_core.exceptions import NotFound

        with reading_gcs(self.uri(key)):
            blob = self._bucket().blob(self._name(key))
            try:
                return blob.download_as_bytes(**gcs_patience(self.read_retry_seconds)), str(blob.generation)
            except NotFound:
                # A missing bucket (a typo in SKINSEG_GCS_BUCKET) is a store that cannot be read, not
                # a missing file: "no champion yet" or "removed outside skinseg" would mislead.
                if not self._bucket_exists():
                    raise BlobStoreUnavailableError(f"cannot read {self.uri(key)}: bucket {self.bucket} does not exist") from None
                raise FileNotFoundError(f"no blob {self.uri(key)}") from None

    def _bucket_exists(self) -> bool:
        """Asked by listing at most one object, which needs storage.objects.list (the store lists
        anyway). `Bucket.exists()` needs storage.buckets.get, which an account holding only object
        roles (roles/storage.objectAdmin) lacks: its 403 would make every missing blob an outage."""
        from google.api_core.exceptions import NotFound

        try:
            # Under the prefix: an account may be allowed to list only there.
            listed = self._bucket().list_blobs(prefix=self._base(), max_results=1, **gcs_patience(self.read_retry_seconds))
            next(iter(listed), None)
        except NotFound:
            return False
        return True

    def _base(self) -> str:
        """The object name every key's name starts with (the prefix and a '/', or nothing)."""
        return self._name("x")[:-1]

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self._base()
        with reading_gcs(f"gs://{self.bucket}/{base + prefix}*"):
            names = [blob.name for blob in self._bucket().list_blobs(prefix=base + prefix, **gcs_patience(self.read_retry_seconds))]
        return sorted(name[len(base) :] for name in names)

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{self._name(key)}"
