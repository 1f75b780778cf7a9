"""Ingestion assets, one partition per landed batch: pixels as read, then usable vs. rejected."""

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg
import pandas as pd
from dagster_pandera import pandera_schema_to_dagster_type
from pydantic import Field

from skinseg_assets.assets import columns
from skinseg_assets.assets.event_log import latest_storage_ids
from skinseg_assets.assets.metadata import latest_materialization_metadata, markdown_table
from skinseg_assets.partitions import pixel_batches
from skinseg_assets.pixels.batches import BUNDLED_BATCH
from skinseg_assets.pixels.rules import RULES, quarantine_duplicate, validate_pixels
from skinseg_assets.pixels.schema import ValidatedSkinPixels
from skinseg_assets.pixels.source import PixelFile, PixelFileError, parse_pixel_file, quoted_line, read_bundled_uci
from skinseg_assets.pixels.split import class_balance
from skinseg_assets.resources.blob_store import LazyGCSResource
from skinseg_assets.resources.landing_zone import LandingZone, read_pixel_source

INGESTION = "ingestion"
# DuckDB keeps every batch in one table; this column says which rows are which partition.
BATCH_TABLE_METADATA = {"partition_expr": "batch"}
# What the "Duplicate of" metadata reads for a batch that is an original.
NOT_A_DUPLICATE = "none"


class PixelSourceConfig(dg.Config):
    source_uri: str = Field(
        default="",
        description="Read this batch from this pixel file (a local path or gs://bucket/object, named "
        "*.txt, *.tsv, *.csv or *.parquet) instead of its landed file. Empty: the landed file, or the bundled UCI file for the "
        f"batch '{BUNDLED_BATCH}'.",
    )


# The run tags of a sensor's run: the landed file it is for, and the version of it that was requested.
SOURCE_TAG = "skinseg/source"
CONTENT_TAG = "skinseg/content"


def read_batch(
    batch: str, source_uri: str, landing_zone: LandingZone, gcs: LazyGCSResource, requested_identity: str | None = None
) -> PixelFile:
    """The batch's pixel file. With `requested_identity` (the sensor's runs), only that version of
    the landed file: one replaced or rewritten since (perhaps half-written now) is not read."""
    if source_uri:
        return read_pixel_source(source_uri, gcs)
    if batch == BUNDLED_BATCH:
        return read_bundled_uci()
    return landing_zone.read(landing_zone.find(batch), version=requested_identity)


# Latest materializations fetched per query: within Dagster's cap on records per fetch (10,000 by
# default) and SQLite's limit on query parameters.
RECORDS_PER_FETCH = 1_000


@dataclass(frozen=True)
class RawIngest:
    """What a batch's latest raw materialization recorded."""

    sha256: str | None
    duplicate_of: str | None
    storage_id: int


def latest_raw_ingests(instance: dg.DagsterInstance) -> dict[str, RawIngest]:
    """Each batch's latest raw materialization (deleted batches included), from the event log."""
    raw = dg.AssetKey("raw_skin_pixels")
    # One event per batch, however many times each was ingested.
    latest_ids = sorted(latest_storage_ids(instance, raw).values())
    records = []
    for start in range(0, len(latest_ids), RECORDS_PER_FETCH):
        chunk = latest_ids[start : start + RECORDS_PER_FETCH]
        records += instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=raw, storage_ids=chunk), limit=len(chunk)
        ).records
    ingests = {}
    for record in records:
        materialization = record.asset_materialization
        if materialization is None:
            continue
        metadata = materialization.metadata
        ingests[materialization.partition] = RawIngest(
            sha256=metadata["sha256"].value if "sha256" in metadata else None,
            duplicate_of=recorded_duplicate_of(metadata),
            storage_id=record.storage_id,
        )
    return ingests


def original_batch_sha256s(instance: dg.DagsterInstance) -> dict[str, str]:
    """The content sha256 of each batch whose latest raw materialization was not itself a duplicate."""
    return {
        batch: ingest.sha256
        for batch, ingest in latest_raw_ingests(instance).items()
        if ingest.sha256 and ingest.duplicate_of is None
    }


def duplicates_to_recheck(instance: dg.DagsterInstance, existing: set[str] | None = None) -> dict[str, str]:
    """Batches counted as duplicates of an original that no longer holds their content.

    The original's file was replaced, its partition deleted, or it became a duplicate itself: the
    copy's rows would otherwise stay quarantined for good. Maps each such batch to a token naming
    the original's change (its latest storage id), so each change asks for one re-check.
    `existing` is the pixel_batches partitions, if the caller has them already.
    """
    if existing is None:
        existing = set(instance.get_dynamic_partitions(pixel_batches.name))
    ingests = latest_raw_ingests(instance)
    stale = {}
    for batch, ingest in ingests.items():
        if batch not in existing or ingest.duplicate_of is None:
            continue
        original = ingests.get(ingest.duplicate_of)
        present = ingest.duplicate_of in existing
        if present and original and original.duplicate_of is None and original.sha256 == ingest.sha256:
            continue
        stale[batch] = f"{ingest.duplicate_of}@{original.storage_id if original else 0}{'' if present else ':deleted'}"
    return stale


def duplicate_of(instance: dg.DagsterInstance, batch: str, sha256: str) -> str | None:
    """An existing original batch with exactly this content, if any.

    Batches already counted as duplicates are not originals: re-ingesting the first batch after its
    copy must keep the first batch's rows, not quarantine both.
    """
    others = set(instance.get_dynamic_partitions(pixel_batches.name)) - {batch}
    originals = original_batch_sha256s(instance) if others else {}
    return min((other for other, original in originals.items() if other in others and original == sha256), default=None)


@dg.asset(
    group_name=INGESTION,
    partitions_def=pixel_batches,
    metadata={**BATCH_TABLE_METADATA, **columns.RAW_SKIN_PIXELS},
    kinds={"duckdb", "pandas"},
)
def raw_skin_pixels(
    context: dg.AssetExecutionContext, config: PixelSourceConfig, landing_zone: LandingZone, gcs: LazyGCSResource
) -> dg.Output:
    """Pixel rows of one batch exactly as read from its file: every field kept as text, one row per line."""
    batch = context.partition_key
    if batch == BUNDLED_BATCH and not context.instance.has_dynamic_partition(pixel_batches.name, batch):
        # `dagster job execute -j training_job` on a fresh instance: the bundled file is the first batch.
        # This works because the CLI launches the job with its `dagster/partition` tag without checking
        # that the partition exists (execute_in_process and run requests do check); the README's job
        # command test covers it.
        context.instance.add_dynamic_partitions(pixel_batches.name, [batch])
    try:
        pixel_file = read_batch(batch, config.source_uri, landing_zone, gcs, context.run.tags.get(CONTENT_TAG))
        parsed = parse_pixel_file(pixel_file)
    except PixelFileError as error:
        # A Failure puts the file and the problem at the top of the run's error, not under a trace.
        raise dg.Failure(
            description=str(error), metadata={"Batch": batch, "File": error.source, "Problem": error.problem}
        ) from error
    raw = parsed.raw
    raw.insert(0, "batch", batch)
    if parsed.header:
        context.log.info(f"{pixel_file.source}: header line {quoted_line(parsed.header)} skipped")
    duplicate = duplicate_of(context.instance, batch, pixel_file.sha256)
    if duplicate:
        context.log.warning(f"{pixel_file.source} has the same content as batch {duplicate}; it will not be counted twice")
    return dg.Output(
        raw,
        metadata={
            "Batch": batch,
            "Source": pixel_file.source,
            "Rows": dg.MetadataValue.int(len(raw)),
            "sha256": pixel_file.sha256,
            "Size (bytes)": dg.MetadataValue.int(len(pixel_file.content)),
            "Format": parsed.delimiter,
            "Header": parsed.header.strip() if parsed.header else "none",
            "Duplicate of": duplicate or NOT_A_DUPLICATE,
            "Preview": markdown_table(raw.head(5)),
        },
    )


def recorded_duplicate_of(metadata: Mapping[str, dg.MetadataValue]) -> str | None:
    """The batch a raw materialization's metadata names as holding the same content; None for an original."""
    duplicate = str(metadata["Duplicate of"].value) if "Duplicate of" in metadata else NOT_A_DUPLICATE
    return None if duplicate == NOT_A_DUPLICATE else duplicate


def recorded_raw_ingest(instance: dg.DagsterInstance, batch: str) -> tuple[str | None, str | None]:
    """The source file and the original (if a duplicate) recorded by the batch's latest raw materialization."""
    metadata = latest_materialization_metadata(instance, dg.AssetKey("raw_skin_pixels"), batch) or {}
    return (str(metadata["Source"].value) if "Source" in metadata else None), recorded_duplicate_of(metadata)


with warnings.catch_warnings():
    # dagster-pandera marks this function beta; the warning would print on every code load.
    warnings.simplefilter("ignore", dg.BetaWarning)
    ValidatedSkinPixelsType = pandera_schema_to_dagster_type(ValidatedSkinPixels)


@dg.multi_asset(
    partitions_def=pixel_batches,
    outs={
        "validated_skin_pixels": dg.AssetOut(
            group_name=INGESTION,
            dagster_type=ValidatedSkinPixelsType,
            metadata={**BATCH_TABLE_METADATA, **columns.column_schema(*columns.validated_columns(ValidatedSkinPixelsType))},
            kinds={"duckdb", "pandas"},
            description="Usable pixels: B, G, R as 0-255 integers and is_skin, checked by the Pandera schema.",
        ),
        "rejected_skin_pixels": dg.AssetOut(
            group_name=INGESTION,
            metadata={**BATCH_TABLE_METADATA, **columns.REJECTED_SKIN_PIXELS},
            kinds={"duckdb", "pandas"},
            description="Raw rows that broke a validation rule, kept whole with the rules and readable reasons.",
        ),
    },
)
def validated_and_rejected_skin_pixels(context: dg.AssetExecutionContext, raw_skin_pixels: pd.DataFrame):
    """Apply the validation rules to a batch's raw rows; every raw row lands in exactly one output."""
    batch = context.partition_key
    # The file's name stays in the raw asset's metadata, not in 245,000 copies in its table.
    source, duplicate = recorded_raw_ingest(context.instance, batch)
    source = source or f"batch {batch}"
    rows = raw_skin_pixels.drop(columns=["batch"])
    outcome = quarantine_duplicate(rows, source, duplicate) if duplicate else validate_pixels(rows, source)
    validated, rejected = outcome.validated, outcome.rejected
    validated.insert(0, "batch", batch)
    rejected.insert(0, "batch", batch)
    by_rule = outcome.rejected_by_rule()
    rule_table = markdown_table(
        pd.DataFrame({"rule": list(by_rule), "meaning": [RULES[rule] for rule in by_rule], "rows": list(by_rule.values())})
    )
    shared = {"Batch": batch, "Source": source, "Raw rows": dg.MetadataValue.int(len(raw_skin_pixels))}
    if len(rejected) and not duplicate:  # (raw_skin_pixels has warned of a duplicate batch)
        # Said in the run's log too: a run that passes (within the allowed share) still rejected rows.
        context.log.warning(
            f"{len(rejected):,} of {len(raw_skin_pixels):,} rows of {source} rejected ({outcome.rejected_share:.2%}), "
            f"kept with their reasons in rejected_skin_pixels, partition {batch}. First: {rejected['reasons'].iloc[0]}"
        )
    yield dg.Output(
        validated,
        output_name="validated_skin_pixels",
        metadata={
            **shared,
            "Rows": dg.MetadataValue.int(len(validated)),
            "Skin share": dg.MetadataValue.float(class_balance(validated)),
            "Rejected rows": dg.MetadataValue.int(len(rejected)),
            "Rejected share": dg.MetadataValue.float(outcome.rejected_share),
            "Duplicate of": duplicate or NOT_A_DUPLICATE,
        },
    )
    yield dg.Output(
        rejected,
        output_name="rejected_skin_pixels",
        metadata={
            **shared,
            "Rows": dg.MetadataValue.int(len(rejected)),
            "Rows by rule": rule_table,
            "First reasons": dg.MetadataValue.md(
                "\n".join(f"- {reason}" for reason in rejected["reasons"].head(10)) or "none"
            ),
        },
    )
