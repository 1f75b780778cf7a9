"""Partitions: one per landed pixel file."""

import dagster as dg

# One partition per landed file; the bundled UCI file is always the first (see pixels/batches.py).
pixel_batches = dg.DynamicPartitionsDefinition(name="pixel_batches")
