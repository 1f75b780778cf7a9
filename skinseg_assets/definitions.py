"""The one place that builds skinseg's `Definitions`."""

import dagster as dg

from skinseg_assets.assets import drift, ingestion, serving, training
from skinseg_assets.checks import asset_checks
from skinseg_assets.jobs import EXECUTOR, ingest_batch_job, rollback_champion_job, serving_job, training_job
from skinseg_assets.resources import build_resources
from skinseg_assets.sensors import automation_sensor, landing_zone_sensor


def build_definitions(deployment: str | None = None) -> dg.Definitions:
    """skinseg's Definitions for a deployment (default: SKINSEG_DEPLOYMENT), settings read now."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, training, drift, serving]),
        asset_checks=asset_checks,
        jobs=[training_job, ingest_batch_job, serving_job, rollback_champion_job],
        sensors=[landing_zone_sensor, automation_sensor],
        resources=build_resources(deployment),
        # Every job's, and that of runs without a named job: what the automation sensor launches and
        # what the UI materializes (see jobs.EXECUTOR for why one process).
        executor=EXECUTOR,
    )


def resolved_training_job() -> dg.JobDefinition:
    """training_job resolved against this environment's Definitions: what `dg.reconstructable`
    takes to run it, or re-execute a run of it, from Python (README, "What the job builds")."""
    return build_definitions().resolve_job_def("training_job")


defs = build_definitions()
