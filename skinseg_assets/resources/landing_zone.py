"""The landing zone: a local folder or a gs:// prefix where new pixel files arrive.

skinseg only lists and reads it: files are never moved, changed or deleted there.
"""

import os
import time
from collections.abc import Callable
from pathlib import Path
from stat import S_ISREG

import dagster as dg
from pydantic import Field

from skinseg_assets.pixels.batches import (
    PIXEL_FILE_SUFFIXES,
    LandedFile,
    is_pixel_file_name,
    is_pixel_folder_name,
    is_utf8,
    same_version,
)
from skinseg_assets.pixels.source import PixelFile, PixelFileError
from skinseg_assets.resources.blob_store import LazyGCSResource, gcs_patience, reading_gcs, split_gs_uri


GCS_GENERATION = "generation:"  # a GCS object's identity: its generation


class LandingZone(dg.ConfigurableResource):
    """Lists finished pixel files in the landing zone and reads them."""

    uri: str = Field(description="A local folder or gs://bucket/prefix")
    gcs: dg.ResourceDependency[LazyGCSResource]
    settle_seconds: float = Field(
        default=2.0,
        ge=0.0,
        description="A local file is taken only once it has not changed for this long (still being written otherwise)",
    )
    list_retry_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a failing gs:// listing is retried before the tick fails: within the 60 s Dagster "
        "gives a sensor tick, so the tick reports the GCS error, not a timeout",
    )

    @property
    def is_gcs(self) -> bool:
        return self.uri.startswith("gs://")

    def _bucket_and_prefix(self) -> tuple[str, str]:
        bucket, prefix = split_gs_uri(self.uri)
        prefix = prefix.strip("/")
        return bucket, f"{prefix}/" if prefix else ""

    def _bucket(self):
        return self.gcs.get_client().bucket(self._bucket_and_prefix()[0])

    def list_files(self, settled_only: bool = True, warn: Callable[[str], None] | None = None) -> list[LandedFile]:
        """Pixel files, sorted by name; only finished ones unless `settled_only` is False.

        Raises if the zone cannot be listed (a folder it may not read included). A file it cannot
        take is left where it is and named to `warn`: a name that is not UTF-8, one it cannot stat
        (a symbolic link loop), or a second name with the batch key of another (the first by name
        keeps it, settled or not, so that the sensor and the runs always mean the same file).
        """
        warn = warn or (lambda message: None)
        if self.is_gcs:
            bucket_name, prefix = self._bucket_and_prefix()
            files = [
                (
                    LandedFile(
                        name=blob.name[len(prefix) :],
                        uri=f"gs://{bucket_name}/{blob.name}",
                        identity=f"{GCS_GENERATION}{blob.generation}",
                    ),
                    True,  # an object is whole once it exists
                )
                for blob in self._listed_blobs(prefix)
                if is_pixel_file_name(blob.name[len(prefix) :])
            ]
        else:
            files = self._local_files(warn)
        by_batch: dict[str, tuple[LandedFile, bool]] = {}
        for landed, settled in sorted(files, key=lambda file: file[0].name):
            taken, _ = by_batch.setdefault(landed.batch, (landed, settled))
            if taken is not landed:
                warn(f"{landed.uri} is not taken: {taken.name!r} already has its batch key {landed.batch!r}; rename one of them")
        return [landed for landed, settled in by_batch.values() if settled or not settled_only]

    def _listed_blobs(self, prefix: str) -> list:
        with reading_gcs(self.uri):
            return list(self._bucket().list_blobs(prefix=prefix, **gcs_patience(self.list_retry_seconds)))

    @property
    def local_root(self) -> Path:
        return Path(self.uri).expanduser()

    @property
    def is_missing(self) -> bool:
        """A local landing folder that does not exist (yet): nothing has landed."""
        return not self.is_gcs and not self.local_root.exists()

    def _local_files(self, warn: Callable[[str], None]) -> list[tuple[LandedFile, bool]]:
        """Each pixel file with whether it has settled."""
        if self.is_missing:
            return []
        root = self.local_root
        if not root.is_dir():
            raise NotADirectoryError(f"the landing zone {root} is not a folder")

        def walk_error(error: OSError) -> None:
            # A folder removed while being walked (a writer's staging folder) is skipped; any other
            # error (a folder it may not read) fails the listing, so no file is skipped silently.
            if not isinstance(error, (FileNotFoundError, NotADirectoryError)):
                raise error

        now = time.time()
        files = []
        # Folders a pixel file could not be in are not entered (symbolic links to folders are not followed).
        for folder, subfolders, names in os.walk(root, onerror=walk_error):
            subfolders[:] = [name for name in subfolders if is_pixel_folder_name(name)]
            for file_name in names:
                path = Path(folder) / file_name
                name = path.relative_to(root).as_posix()
                if not is_pixel_file_name(name):
                    continue
                if not is_utf8(name):
                    warn(f"{os.fsencode(path)!r} is not taken: its name is not UTF-8; rename it")
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # removed since the folder was read, or a link to nothing
                except OSError as error:
                    warn(f"{path} is not taken: {error.strerror}")
                    continue
                if S_ISREG(stat.st_mode):
                    # Not settled: it may still be being written; a later tick takes it.
                    settled = now - last_write(stat) >= self.settle_seconds
                    files.append((LandedFile(name=name, uri=str(path.absolute()), identity=local_identity(stat)), settled))
        return files

    def find(self, batch: str) -> LandedFile:
        """The landed file whose batch key is `batch` (settled or not: its run was already requested)."""
        for landed in self.list_files(settled_only=False):
            if landed.batch == batch:
                return landed
        raise PixelFileError(f"{self.uri} (batch {batch})", "no landed file has this batch key any more")

    def read(self, landed: LandedFile, version: str | None = None) -> PixelFile:
        """The file's bytes. With `version` (an identity the sensor listed), that version only: a file
        replaced or rewritten since, before or while it is read, raises PixelFileError."""
        if landed.uri.startswith("gs://"):
            if version is None or not version.startswith(GCS_GENERATION):
                return read_pixel_source(landed.uri, self.gcs)
            content, _ = download_gs(landed.uri, self.gcs, int(version[len(GCS_GENERATION) :]))
            return PixelFile(source=landed.uri, content=content)
        if version is None:
            return read_pixel_source(landed.uri, self.gcs)
        try:
            with open(landed.uri, "rb") as handle:
                before = local_identity(os.fstat(handle.fileno()))
                content = handle.read() if same_version(version, before) else b""
                after = local_identity(os.fstat(handle.fileno()))  # a write while reading changes it
        except FileNotFoundError:
            raise PixelFileError(landed.uri, "does not exist or is not a file") from None
        if not (same_version(version, before) and after == before):
            raise changed_since_requested(landed.uri, version, after)
        return PixelFile(source=landed.uri, content=content)


def changed_since_requested(uri: str, requested: str, now: str) -> PixelFileError:
    return PixelFileError(
        uri,
        f"changed since this run was requested (requested version {requested}, now {now}); not read. The "
        "landing-zone sensor requests a run for each new version once it has settled (a re-execution "
        "asks for the old version again: launch a new run instead)",
    )


def last_write(stat: os.stat_result) -> float:
    """When the file was last written, as far as its times tell.

    A write sets both its modification and change times to now, so the earlier of the two is recent
    while it is being written. Tools that copy times (cp -p, rsync -a, tar) set the modification
    time once the content is complete, perhaps to the future (another machine's clock): the change
    time, which they cannot set, then says when.
    """
    return min(stat.st_mtime, stat.st_ctime)


def local_identity(stat: os.stat_result) -> str:
    """What identifies a local file's version: size, modification time and inode change time.

    The modification time can be set back (`cp -p`, `rsync -a`, `touch -d`, a file moved back from
    a backup); the change time cannot: writing, renaming or re-timing a file sets it to now. So a
    replaced file never reads as a version taken before, even with the same size and mtime. A
    chmod, chown or new hard link sets it too: the file is then ingested once more, same rows.
    """
    return f"size:{stat.st_size}:mtime_ns:{stat.st_mtime_ns}:ctime_ns:{stat.st_ctime_ns}"


def download_gs(uri: str, gcs: LazyGCSResource, generation: int | None = None) -> tuple[bytes, int]:
    """A gs:// object's bytes and the generation they came from; with `generation`, that one only.

    A missing object, or another generation than the one asked for, is a PixelFileError; a GCS
    service or credential error a BlobStoreUnavailableError naming the object.
    """
    from google.api_core.exceptions import NotFound, PreconditionFailed

    bucket, name = split_gs_uri(uri)
    requested = f"{GCS_GENERATION}{generation}"
    with reading_gcs(uri):
        blob = gcs.get_client().bucket(bucket).blob(name)
        try:
            content = blob.download_as_bytes(if_generation_match=generation)
        except NotFound:
            raise PixelFileError(uri, "does not exist") from None
        except PreconditionFailed:
            raise changed_since_requested(uri, requested, "a later generation") from None
    # The generation the bytes came from (a response header), checked too: an emulator may ignore the precondition.
    if generation is not None and int(blob.generation) != generation:
        raise changed_since_requested(uri, requested, f"{GCS_GENERATION}{blob.generation}")
    return content, int(blob.generation)


def read_pixel_source(source_uri: str, gcs: LazyGCSResource) -> PixelFile:
    """The bytes of a pixel file named by a local path or a gs:// URI.

    Only names the landing zone would take are read (.txt, .tsv, .csv, .parquet): anyone who may
    launch a run sets this path, and any other file the code server can read (its environment in
    /proc, a mounted secret) is not theirs to have read into the warehouse or quoted in an error.
    """
    if not source_uri.lower().endswith(PIXEL_FILE_SUFFIXES):
        raise PixelFileError(
            source_uri, f"is not read: only files named *{', *'.join(PIXEL_FILE_SUFFIXES)} are pixel files"
        )
    if source_uri.startswith("gs://"):
        return PixelFile(source=source_uri, content=download_gs(source_uri, gcs)[0])
    path = Path(source_uri).expanduser()
    if not path.is_file():
        raise PixelFileError(source_uri, "does not exist or is not a file")
    # Named as given (not the target of a symbolic link): the name's suffix decides the format.
    return PixelFile(source=str(path.absolute()), content=path.read_bytes())
