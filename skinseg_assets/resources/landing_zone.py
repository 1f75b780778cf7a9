"""The landing zone: a local folder or a gs:// prefix where new pixel files arrive.

skinseg only lists and reads it: files are never moved, changed or deleted there.
"""

import os
import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from skinseg_assets.pixels.batches import LandedFile, is_pixel_file_name
from skinseg_assets.pixels.source import PixelFile, PixelFileError
from skinseg_assets.resources.blob_store import LazyGCSResource, split_gs_uri


class LandingZone(dg.ConfigurableResource):
    """Lists finished pixel files in the landing zone and reads them."""

    uri: str = Field(description="A local folder or gs://bucket/prefix")
    gcs: dg.ResourceDependency[LazyGCSResource]
    settle_seconds: float = Field(
        default=2.0,
        ge=0.0,
        description="A local file is taken only once it has not changed for this long (still being written otherwise)",
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

    def list_files(self, settled_only: bool = True) -> list[LandedFile]:
        """Pixel files, sorted by name; only finished ones unless `settled_only` is False.

        Raises if the zone cannot be listed.
        """
        if self.is_gcs:
            bucket_name, prefix = self._bucket_and_prefix()
            files = [
                LandedFile(
                    name=blob.name[len(prefix) :],
                    uri=f"gs://{bucket_name}/{blob.name}",
                    identity=f"generation:{blob.generation}",
                )
                for blob in self._bucket().list_blobs(prefix=prefix)
                if is_pixel_file_name(blob.name[len(prefix) :])
            ]
        else:
            root = Path(self.uri)
            if not root.is_dir():
                return []
            now = time.time()
            files = []
            for path in root.rglob("*"):
                name = path.relative_to(root).as_posix()
                if not path.is_file() or not is_pixel_file_name(name):
                    continue
                stat = path.stat()
                if settled_only and now - stat.st_mtime < self.settle_seconds:
                    continue  # may still be being written; a later tick takes it
                files.append(LandedFile(name=name, uri=str(path.resolve()), identity=local_identity(stat)))
        return sorted(files, key=lambda landed: landed.name)

    def find(self, batch: str) -> LandedFile:
        """The landed file whose batch key is `batch` (settled or not: its run was already requested)."""
        for landed in self.list_files(settled_only=False):
            if landed.batch == batch:
                return landed
        raise PixelFileError(f"{self.uri} (batch {batch})", "no landed file has this batch key any more")

    def read(self, landed: LandedFile) -> PixelFile:
        return read_pixel_source(landed.uri, self.gcs)


def local_identity(stat: os.stat_result) -> str:
    """What identifies a local file's version: size, modification time and inode change time.

    The modification time can be set back (`cp -p`, `rsync -a`, `touch -d`, a file moved back from
    a backup); the change time cannot: writing, renaming or re-timing a file sets it to now. So a
    replaced file never reads as a version taken before, even with the same size and mtime. A
    chmod, chown or new hard link sets it too: the file is then ingested once more, same rows.
    """
    return f"size:{stat.st_size}:mtime_ns:{stat.st_mtime_ns}:ctime_ns:{stat.st_ctime_ns}"


def read_pixel_source(source_uri: str, gcs: LazyGCSResource) -> PixelFile:
    """The bytes of a pixel file named by a local path or a gs:// URI."""
    if source_uri.startswith("gs://"):
        from google.api_core.exceptions import NotFound

        bucket, name = split_gs_uri(source_uri)
        try:
            content = gcs.get_client().bucket(bucket).blob(name).download_as_bytes()
        except NotFound:
            raise PixelFileError(source_uri, "does not exist") from None
        return PixelFile(source=source_uri, content=content)
    path = Path(source_uri).expanduser()
    if not path.is_file():
        raise PixelFileError(source_uri, "does not exist or is not a file")
    return PixelFile(source=str(path.resolve()), content=path.read_bytes())
