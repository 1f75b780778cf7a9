"""Jobs: named, described selections of assets."""

import dagster as dg

from skinseg_assets.assets.ingestion import INGESTION
from skinseg_assets.assets.training import TRAINING

training_job = dg.define_asset_job(
    name="training_job",
    description="Materialize everything from the raw pixel file to the evaluated model and its metrics.",
    selection=dg.AssetSelection.groups(INGESTION, TRAINING),
    # One process: the steps are short and share one DuckDB file, so a process per step
    # (the default multiprocess executor) would only add start-up time and lock contention.
    executor_def=dg.in_process_executor,
)
