"""Jobs: named, described selections of assets."""

import dagster as dg

from skinseg_assets.assets.ingestion import INGESTION
from skinseg_assets.assets.training import TRAINING
from skinseg_assets.partitions import pixel_batches
from skinseg_assets.pixels.batches import BUNDLED_BATCH

# One process: the steps are short and share one DuckDB file, so a process per step (the
# default multiprocess executor) would only add start-up time and lock contention.
EXECUTOR = dg.in_process_executor

training_job = dg.define_asset_job(
    name="training_job",
    description="Materialize everything from a batch's raw pixel file to the evaluated model and its metrics "
    f"(by default the bundled UCI batch, '{BUNDLED_BATCH}').",
    selection=dg.AssetSelection.groups(INGESTION, TRAINING),
    partitions_def=pixel_batches,
    tags={"dagster/partition": BUNDLED_BATCH},
    executor_def=EXECUTOR,
)

ingest_batch_job = dg.define_asset_job(
    name="ingest_batch_job",
    description="Read, validate and quarantine one landed batch (the landing-zone sensor launches it).",
    selection=dg.AssetSelection.assets("raw_skin_pixels", "validated_skin_pixels", "rejected_skin_pixels"),
    partitions_def=pixel_batches,
    executor_def=EXECUTOR,
)
