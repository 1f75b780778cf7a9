"""Resources by deployment. Every deployment has the same keys, so assets never ask where they run.

| key              | local (default)                  | gcs                                      |
| ---------------- | -------------------------------- | ---------------------------------------- |
| io_manager       | DuckDB file in the data dir      | DuckDB file in the data dir (a volume)   |
| warehouse        | histories (metrics, champion decisions) in the same DuckDB file | the same |
| blob_store       | `blobs/` folder in the data dir  | `gs://$SKINSEG_GCS_BUCKET/$SKINSEG_GCS_PREFIX` |
| model_io_manager | skops files in the blob store    | the same, in the bucket                  |
| gcs              | GCS client (for gs:// sources)   | GCS client                               |
| landing_zone     | `$SKINSEG_LANDING_URI`: a folder (default `landing/` in the data dir) or gs://bucket/prefix | the same |
"""

import os

import dagster as dg

from skinseg_assets import settings
from skinseg_assets.resources.blob_store import (
    GCS_DEFAULT_RETRY_SECONDS,
    BlobStore,
    GCSBlobStore,
    LazyGCSResource,
    LocalBlobStore,
)
from skinseg_assets.resources.landing_zone import LandingZone
from skinseg_assets.resources.model_io_manager import ModelIOManager
from skinseg_assets.resources.warehouse import DuckDBWarehouse
from skinseg_assets.resources.warehouse_io_manager import WarehouseIOManager

DUCKDB_FILE = "warehouse.duckdb"
DUCKDB_SCHEMA = "skinseg"


def _gcs_resource() -> LazyGCSResource:
    project = os.environ.get(settings.GCP_PROJECT_ENV)
    return LazyGCSResource(project=dg.EnvVar(settings.GCP_PROJECT_ENV) if project else None)


def build_blob_store(
    deployment: str | None = None, gcs: LazyGCSResource | None = None, read_retry_seconds: float = GCS_DEFAULT_RETRY_SECONDS
) -> BlobStore:
    """The deployment's blob store; on GCS, a failing read gives up after `read_retry_seconds`."""
    if (deployment or settings.deployment()) == "gcs":
        return GCSBlobStore(
            gcs=gcs or _gcs_resource(),
            bucket=dg.EnvVar(settings.GCS_BUCKET_ENV),
            prefix=settings.gcs_prefix(),
            read_retry_seconds=read_retry_seconds,
        )
    return LocalBlobStore(root=str(settings.data_dir() / "blobs"))


def build_resources(deployment: str | None = None) -> dict[str, object]:
    """The resources of a deployment (`local` or `gcs`; default: SKINSEG_DEPLOYMENT)."""
    deployment = deployment or settings.deployment()
    database = str(settings.data_dir() / DUCKDB_FILE)
    gcs = _gcs_resource()
    blob_store = build_blob_store(deployment, gcs)
    return {
        "io_manager": WarehouseIOManager(database=database, schema=DUCKDB_SCHEMA),
        "warehouse": DuckDBWarehouse(database=database, schema_name=DUCKDB_SCHEMA),
        "blob_store": blob_store,
        "model_io_manager": ModelIOManager(blob_store=blob_store),
        "gcs": gcs,
        "landing_zone": LandingZone(uri=settings.landing_uri(), gcs=gcs),
    }
