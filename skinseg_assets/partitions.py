"""Partitions: one per landed pixel file."""

import warnings

import dagster as dg

# One partition per landed file; the bundled UCI file is always the first (see pixels/batches.py).
pixel_batches = dg.DynamicPartitionsDefinition(name="pixel_batches")

# Checks on partitioned assets (one result per batch) are a preview feature in Dagster 1.13; its
# warning would print at every code load. Narrowly silenced: only this message.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning)
