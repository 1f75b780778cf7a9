"""Sensors: new files in the landing zone become batches, and declarative automation does the rest."""

import dagster as dg

from skinseg_assets import settings
from skinseg_assets.assets.event_log import materialized_partitions
from skinseg_assets.assets.ingestion import CONTENT_TAG, SOURCE_TAG, duplicates_to_recheck
from skinseg_assets.assets.metadata import latest_materialization_metadata
from skinseg_assets.jobs import ingest_batch_job
from skinseg_assets.partitions import PARTITION_TAG, pixel_batches
from skinseg_assets.pixels.batches import (
    BUNDLED_BATCH,
    NOTHING_TAKEN,
    BatchRequest,
    Seen,
    plan_tick,
    read_cursor,
    same_version,
    write_cursor,
)
from skinseg_assets.pixels.source import BUNDLED_UCI_SHA256, BUNDLED_UCI_URI
from skinseg_assets.resources.landing_zone import LandingZone

MAX_BATCHES_PER_TICK = 25
UNFINISHED_RUNS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.SUSPENDED,
    dg.DagsterRunStatus.CANCELING,
]


def bundled_batch() -> BatchRequest:
    return BatchRequest(batch=BUNDLED_BATCH, identity=f"sha256:{BUNDLED_UCI_SHA256}", uri=BUNDLED_UCI_URI)


@dg.sensor(
    job=ingest_batch_job,
    minimum_interval_seconds=settings.sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers each new or replaced file in the landing zone as a pixel_batches partition and ingests it once.",
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZone) -> dg.SensorResult:
    seen = read_cursor(context.cursor)
    bundled = bundled_batch()
    validated = dg.AssetKey("validated_skin_pixels")
    if bundled.batch not in seen and latest_materialization_metadata(context.instance, validated, bundled.batch) is not None:
        # A run already validated the bundled batch (training_job ingests it first). Its file never
        # changes (the sha256 is checked on read): ingesting it again would repeat the same rows and
        # retrain for nothing. The cursor notes it with no request made.
        seen[bundled.batch] = Seen(identity=bundled.identity, requests=0)
    # Listing first: if it fails, the tick fails and the cursor stays where it was (no file is lost).
    if landing_zone.is_missing:
        context.log.debug(f"the landing zone {landing_zone.local_root} does not exist (yet): no files to take")
    landed = [bundled] + [
        BatchRequest(batch=landed_file.batch, identity=landed_file.identity, uri=landed_file.uri)
        for landed_file in landing_zone.list_files(warn=context.log.warning)
    ]
    existing = set(context.instance.get_dynamic_partitions(pixel_batches.name))
    plan = plan_tick(landed, seen, existing, MAX_BATCHES_PER_TICK)
    if plan.waiting:
        context.log.info(f"{plan.waiting} more landed files wait for the next tick")
    # A copy whose original no longer holds its content (replaced, deleted, or a copy itself now)
    # is ingested again, once per such change: otherwise its rows would stay quarantined for good.
    # Only copies whose file is still landed: a run for any other would fail on the missing file.
    landed_by_batch = {landed_batch.batch: landed_batch for landed_batch in landed}
    rechecks = [
        dg.RunRequest(
            run_key=f"{batch}#recheck@{original_change}",
            partition_key=batch,
            # As for any run of a landed file: the version listed now, and no other, is read.
            tags={**file_tags(landed_by_batch[batch]), "skinseg/recheck": f"duplicate of {original_change}"[:200]},
        )
        for batch, original_change in sorted(duplicates_to_recheck(context.instance, existing).items())
        # Its file unchanged since it was taken: a changed one gets its own run (this tick or a later one).
        if batch in landed_by_batch and batch in seen and same_version(seen[batch].identity, landed_by_batch[batch].identity)
    ]
    # Only batches this sensor registered and has not given up (in its cursor): a partition added by
    # hand waits for its own run.
    registered = {batch for batch, entry in seen.items() if entry.identity != NOTHING_TAKEN}
    abandoned = abandoned_batches(context.instance, landing_zone, (registered & existing) - set(landed_by_batch))
    cursor = dict(plan.cursor)
    for batch in abandoned:
        context.log.warning(
            f"batch {batch}: its file left the landing zone before a run read it (renamed or removed), so the "
            "batch has no rows; its partition is deleted, or it would hold every retrain back"
        )
        # Whatever lands under this name later is new, even with the identity last requested.
        cursor[batch] = Seen(identity=NOTHING_TAKEN, requests=cursor[batch].requests)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=request.run_key, partition_key=request.batch, tags=file_tags(request))
            for request in plan.requests
        ]
        + rechecks,
        dynamic_partitions_requests=(
            ([pixel_batches.build_add_request(plan.new_partitions)] if plan.new_partitions else [])
            + ([pixel_batches.build_delete_request(abandoned)] if abandoned else [])
        ),
        cursor=write_cursor(cursor),
    )


def file_tags(request: BatchRequest) -> dict[str, str]:
    """A run's tags naming the landed file it reads and the version of it (Dagster caps tags at 200 characters)."""
    return {SOURCE_TAG: request.uri[:200], CONTENT_TAG: request.identity[:200]}


def abandoned_batches(instance: dg.DagsterInstance, landing_zone: LandingZone, unlisted: set[str]) -> list[str]:
    """Of the registered batches whose file is not landed now (`unlisted`), those no run ever read
    and none is about to: their partitions would stay missing, and nothing downstream of
    validated_skin_pixels retrains while one of its partitions is missing."""
    never_read = unlisted - {BUNDLED_BATCH}
    if never_read:
        never_read -= materialized_partitions(instance, dg.AssetKey("raw_skin_pixels"))
    if never_read:  # a file still being written counts as landed
        never_read -= {landed_file.batch for landed_file in landing_zone.list_files(settled_only=False)}
    return sorted(
        batch
        for batch in never_read
        if not instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED_RUNS, tags={PARTITION_TAG: batch}), limit=1)
    )


# Evaluates every asset's automation condition (retraining when batches are validated).
automation_sensor = dg.AutomationConditionSensorDefinition(
    "skinseg_automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=settings.sensor_interval_seconds(),
    description="Re-materializes what is downstream of newly validated batches, once their blocking checks pass.",
)
