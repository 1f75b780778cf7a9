"""Drift: each batch compared with the training data it would join."""

import dagster as dg
import pandas as pd
from pydantic import Field

from skinseg_assets.assets import columns
from skinseg_assets.assets.ingestion import BATCH_TABLE_METADATA, INGESTION
from skinseg_assets.assets.metadata import markdown_image
from skinseg_assets.assets.automation import NO_FAILING_BLOCKING_CHECK_UPSTREAM, eager_without_missed_updates
from skinseg_assets.partitions import partitioned_checks, pixel_batches
from skinseg_assets.pixels.drift import SIGNIFICANCE, drift_png, drift_report, other_batches
from skinseg_assets.resources.blob_store import BlobStore, stored_images


TRAINING_SPLIT = dg.AssetSelection.assets("train_pixels", "test_pixels")

with partitioned_checks():  # one result per batch: a later batch's result does not replace this one's
    DRIFT_CHECK = dg.AssetCheckSpec(
        "drift_within_threshold",
        asset="pixel_drift_report",
        partitions_def=pixel_batches,
        description="Warns (does not block) when a channel's PSI against the training data passes max_psi "
        "and a chi-square test finds the difference significant.",
    )


class DriftReportConfig(dg.Config):
    max_psi: float = Field(
        default=0.25,
        gt=0.0,
        description="Largest per-channel PSI a batch may have without drifting (0.25 is a common 'significant shift' "
        "line); a channel over it warns if the shift is also significant",
    )
    significance: float = Field(
        default=SIGNIFICANCE,
        gt=0.0,
        lt=1.0,
        description="A channel over max_psi warns only if a chi-square test of its bins gives a p-value below this "
        "(a small batch's PSI is noisy)",
    )


@dg.asset(
    group_name=INGESTION,
    partitions_def=pixel_batches,
    check_specs=[DRIFT_CHECK],
    metadata={**BATCH_TABLE_METADATA, **columns.PIXEL_DRIFT_REPORT},
    kinds={"duckdb", "pandas"},
    # Report each batch once it is validated and its blocking check passed; a retrain (a new
    # train_pixels) alone does not redo it. The split's updates are ignored, not its absence: on a
    # fresh instance a batch can be validated before anything is trained (a failing batch holds the
    # first training back), and its report waits for the split (eager() keeps an update until it
    # is handled) instead of failing on the missing table and never being asked for again.
    automation_condition=eager_without_missed_updates(ignoring=TRAINING_SPLIT)
    & NO_FAILING_BLOCKING_CHECK_UPSTREAM.ignore(TRAINING_SPLIT)
    & ~dg.AutomationCondition.any_deps_missing(),
)
def pixel_drift_report(
    context: dg.AssetExecutionContext,
    config: DriftReportConfig,
    validated_skin_pixels: pd.DataFrame,
    train_pixels: pd.DataFrame,
    test_pixels: pd.DataFrame,
    blob_store: BlobStore,
):
    """A batch against the other batches' training data: per-channel PSI and KS, skin shares, new-colour share."""
    batch = context.partition_key
    reference = other_batches(train_pixels, batch)
    report = drift_report(validated_skin_pixels, reference, other_batches(test_pixels, batch))
    metadata = {
        "Batch rows": dg.MetadataValue.int(report.batch_rows),
        "Reference rows": dg.MetadataValue.int(report.reference_rows),
    }
    # Distances and the reference's share only when there was something to compare: a first batch
    # shows no made-up zeros.
    if report.compared:
        metadata.update(
            {
                "Largest PSI": dg.MetadataValue.float(round(report.max_psi, 4)),
                **{f"PSI {channel}": dg.MetadataValue.float(round(value, 4)) for channel, value in report.psi.items()},
                **{f"KS {channel}": dg.MetadataValue.float(round(value, 4)) for channel, value in report.ks.items()},
                **{f"p-value {channel}": dg.MetadataValue.float(float(f"{value:.3g}")) for channel, value in report.p_values.items()},
                "Skin share (training data)": dg.MetadataValue.float(round(report.reference_skin_share, 4)),
            }
        )
    if report.batch_rows:
        metadata["Skin share (batch)"] = dg.MetadataValue.float(round(report.batch_skin_share, 4))
        metadata["Share of new colours (in no other batch)"] = dg.MetadataValue.float(round(report.new_colour_share, 4))
    if report.compared:
        channels = drift_png(validated_skin_pixels, reference, f"batch {batch} vs. training data")
        metadata["Channels"] = markdown_image(channels, "channel histograms")
        metadata.update(stored_images(blob_store, f"pixel_drift_report/{batch}/{context.run.run_id}", {"Channels": channels}))
    else:
        metadata["Note"] = "nothing to compare: the batch or the training data of the other batches is empty"
    yield dg.Output(report.as_row(batch), metadata=metadata)
    drifted = report.drifted_channels(config.max_psi, config.significance)
    yield dg.AssetCheckResult(
        check_name="drift_within_threshold",
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"drifted: {', '.join(drifted)}" if drifted
            else "no channel drifted" if report.compared
            else f"not compared: {metadata['Note']}"
        ),
        metadata={
            "Compared": report.compared,
            "Drifted channels": ", ".join(drifted) or "none",
            **({"Largest PSI": metadata["Largest PSI"]} if report.compared else {}),
            "Threshold": dg.MetadataValue.float(config.max_psi),
            **{f"p-value {channel}": metadata[f"p-value {channel}"] for channel in report.p_values},
            "Significance": dg.MetadataValue.float(config.significance),
            "Batch rows": dg.MetadataValue.int(report.batch_rows),
            "Reference rows": dg.MetadataValue.int(report.reference_rows),
        },
    )
