"""Jobs: named, described selections of assets."""

import dagster as dg

from skinseg_assets.assets.ingestion import INGESTION
from skinseg_assets.assets.serving import production_skin_classifier, segmented_sample_images, skin_color_lut
from skinseg_assets.assets.training import TRAINING
from skinseg_assets.ops.champion import rollback_champion
from skinseg_assets.partitions import PARTITION_TAG
from skinseg_assets.pixels.batches import BUNDLED_BATCH

# One process: the steps are short and share one DuckDB file, so a process per step (the
# default multiprocess executor) would only add start-up time and lock contention. Set once, on
# the Definitions (definitions.py), for every job below and for runs without a named job.
EXECUTOR = dg.in_process_executor

training_job = dg.define_asset_job(
    name="training_job",
    description="Materialize everything from a batch's raw pixel file to the evaluated model, its metrics and "
    "the champion/challenger decision (a better candidate becomes the production champion). By default "
    f"the batch is the bundled UCI file, '{BUNDLED_BATCH}'.",
    selection=dg.AssetSelection.groups(INGESTION, TRAINING) | dg.AssetSelection.assets(production_skin_classifier),
    tags={PARTITION_TAG: BUNDLED_BATCH},
)

ingest_batch_job = dg.define_asset_job(
    name="ingest_batch_job",
    description="Read, validate and quarantine one landed batch (the landing-zone sensor launches it).",
    selection=dg.AssetSelection.assets("raw_skin_pixels", "validated_skin_pixels", "rejected_skin_pixels"),
)

serving_job = dg.define_asset_job(
    name="serving_job",
    description="Compile the production champion into its colour lookup table and segment the sample photos "
    "(reuses the table if the champion has not changed).",
    selection=dg.AssetSelection.assets(skin_color_lut, segmented_sample_images),
)


@dg.job(
    description="Serve an earlier champion version again: checks its integrity, moves champions/current.json, "
    "records the rollback in the promotion history. Config: ops.rollback_champion.config.version.",
)
def rollback_champion_job():
    rollback_champion()
