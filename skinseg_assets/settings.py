"""Operator settings, read from the environment (names are public: see the README)."""

import os
from pathlib import Path

DEPLOYMENT_ENV = "SKINSEG_DEPLOYMENT"
DATA_DIR_ENV = "SKINSEG_DATA_DIR"
LANDING_URI_ENV = "SKINSEG_LANDING_URI"
GCS_BUCKET_ENV = "SKINSEG_GCS_BUCKET"
GCS_PREFIX_ENV = "SKINSEG_GCS_PREFIX"
GCP_PROJECT_ENV = "SKINSEG_GCP_PROJECT"
SENSOR_INTERVAL_ENV = "SKINSEG_SENSOR_INTERVAL_SECONDS"

DEPLOYMENTS = ("local", "gcs")


def deployment() -> str:
    """The deployment named by SKINSEG_DEPLOYMENT: `local` (default) or `gcs`."""
    name = os.environ.get(DEPLOYMENT_ENV, "local").strip().lower() or "local"
    if name not in DEPLOYMENTS:
        raise ValueError(f"{DEPLOYMENT_ENV}={name!r} is not one of {', '.join(DEPLOYMENTS)}")
    return name


def data_dir() -> Path:
    """Where the DuckDB file, the local blob folder and the default landing zone live.

    SKINSEG_DATA_DIR if set; otherwise `data/` in the source checkout (the usual case for a
    newcomer), or `~/.skinseg` when the package is installed outside a checkout.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout / "data"
    return Path.home() / ".skinseg"


def landing_uri() -> str:
    """Where new pixel files land: SKINSEG_LANDING_URI (a folder or gs://bucket/prefix), else `landing/` in the data dir."""
    return os.environ.get(LANDING_URI_ENV) or str(data_dir() / "landing")


def gcs_bucket() -> str:
    """SKINSEG_GCS_BUCKET: the blob-store bucket of the gcs deployment; raises ValueError if unset or empty."""
    bucket = os.environ.get(GCS_BUCKET_ENV, "").strip()
    if not bucket:
        raise ValueError(f"{GCS_BUCKET_ENV} is not set: {DEPLOYMENT_ENV}=gcs keeps models in that bucket")
    return bucket


def gcs_prefix() -> str:
    """The object prefix inside the blob-store bucket: SKINSEG_GCS_PREFIX, else `skinseg`."""
    return os.environ.get(GCS_PREFIX_ENV, "skinseg")


def sensor_interval_seconds() -> int:
    """How often the two sensors tick: SKINSEG_SENSOR_INTERVAL_SECONDS, else 30."""
    configured = os.environ.get(SENSOR_INTERVAL_ENV, "30")
    try:
        return int(configured)
    except ValueError:
        raise ValueError(f"{SENSOR_INTERVAL_ENV}={configured!r} is not a whole number of seconds") from None
