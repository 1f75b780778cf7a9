"""Partitions: one per landed pixel file."""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

# One partition per landed file; the bundled UCI file is always the first (see pixels/batches.py).
pixel_batches = dg.DynamicPartitionsDefinition(name="pixel_batches")
# The run tag that names a run's partition (Dagster sets it; a job may set it to pick a partition).
PARTITION_TAG = "dagster/partition"


@contextmanager
def partitioned_checks() -> Iterator[None]:
    """Where checks with one result per batch are defined. Such checks are a preview feature in
    Dagster 1.13; only its warning, which would print at every code load, is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
        )
        yield
