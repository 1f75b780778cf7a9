"""Training assets: a colour-disjoint split, a candidate classifier and its measured quality."""

from collections.abc import Mapping

import dagster as dg
import pandas as pd
from pydantic import Field

from skinseg_assets.assets import columns
from skinseg_assets.assets.automation import EAGER_UNLESS_BLOCKED
from skinseg_assets.assets.classifier_config import SkinClassifierConfig
from skinseg_assets.assets.event_log import CHECK_FAILED, latest_completed_check, materialized_partitions
from skinseg_assets.assets.ingestion import ValidatedSkinPixelsType
from skinseg_assets.assets.metadata import latest_materialization_metadata, markdown_image, markdown_table
from skinseg_assets.partitions import pixel_batches
from skinseg_assets.pixels.champion import data_identity
from skinseg_assets.pixels.metrics import MIN_F1, Provenance, evaluate_classifier, meets_f1_floor, metrics_row
from skinseg_assets.pixels.model import build_estimator, fit_classifier
from skinseg_assets.pixels.plots import confusion_matrix_png, roc_curve_png
from skinseg_assets.pixels.split import TEST_FRACTION, SplitError, class_balance, split_by_colour
from skinseg_assets.resources.blob_store import BlobStore, stored_images
from skinseg_assets.resources.warehouse import METRICS_HISTORY, Warehouse

TRAINING = "training"

VALIDATED_PIXELS_SCHEMA = dg.AssetCheckKey(dg.AssetKey("validated_skin_pixels"), "validated_pixels_schema")
TRAINING_DATA_SHA256 = "Training data sha256"
TEST_DATA_SHA256 = "Test data sha256"
SPLIT_PIXEL_COLUMNS = columns.split_pixels(ValidatedSkinPixelsType)
SCORE_LABELS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1", "roc_auc": "ROC AUC"}


F1_ABOVE_FLOOR = dg.AssetCheckKey(dg.AssetKey("model_metrics"), "f1_above_floor")
def batches_failing_their_check(instance: dg.DagsterInstance, batches: list[str]) -> list[str]:
    """The batches whose latest completed blocking check failed.

    The automation veto keeps such a batch from triggering a retrain, but any run that trains
    (training_job, a UI materialization) loads every batch's stored rows: this keeps them out until
    the batch passes its check again.
    """
    failing = []
    for batch in batches:
        latest = latest_completed_check(instance, VALIDATED_PIXELS_SCHEMA, batch)
        if latest is not None and latest.status == CHECK_FAILED:
            failing.append(batch)
    return sorted(failing)


def batches_missing_from_the_warehouse(instance: dg.DagsterInstance, stored_batches: list[str]) -> list[str]:
    """The batches whose latest validated_skin_pixels materialization recorded rows that the
    warehouse no longer holds (its DuckDB file was lost or replaced since), deleted partitions aside."""
    current = set(instance.get_dynamic_partitions(pixel_batches.name))
    materialized = materialized_partitions(instance, VALIDATED_PIXELS_SCHEMA.asset_key)
    missing = []
    for batch in sorted((current & materialized) - set(stored_batches)):
        recorded = latest_materialization_metadata(instance, VALIDATED_PIXELS_SCHEMA.asset_key, batch) or {}
        if "Rows" in recorded and recorded["Rows"].value > 0:
            missing.append(batch)
    return missing


def require_candidate_fitted_on(instance: dg.DagsterInstance, training: dict) -> Mapping[str, dg.MetadataValue]:
    """Refuse to judge skin_classifier with a split other than the one it was fitted on.

    `training` is the current train_pixels' `data_identity`. With another split
    (train_and_test_pixels materialized alone since, with another test_fraction or more batches),
    some test colours were in its training data and it would be scored on them. Model cards
    written before the hash was recorded are taken as they are. Returns the model card.
    """
    event = instance.get_latest_materialization_event(dg.AssetKey("skin_classifier"))
    card = event.asset_materialization.metadata if event else {}
    recorded = card.get(TRAINING_DATA_SHA256)
    if recorded is not None and recorded.value != training["sha256"]:
        raise dg.Failure(
            f"skin_classifier was fitted on other training pixels (sha256 {recorded.value[:12]}…) than the current "
            f"train_pixels ({training['rows']:,} rows, sha256 {training['sha256'][:12]}…): "
            "materialize skin_classifier again first"
        )
    return card


def require_a_candidate_above_the_floor(instance: dg.DagsterInstance) -> float:
    """Refuse a candidate whose F1 failed the floor, or that model_metrics has not evaluated.
    Returns the floor that check applied.

    The blocking check stops a bad candidate within its own run; this stops it in a later run
    that materializes production_skin_classifier alone (say, from the UI).
    """
    check = latest_completed_check(instance, F1_ABOVE_FLOOR)
    candidate = instance.fetch_materializations(dg.AssetKey("skin_classifier"), limit=1).records
    if check is None or check.event is None or (candidate and check.event.timestamp < candidate[0].timestamp):
        raise dg.Failure(
            "model_metrics has not evaluated the current skin_classifier against its F1 floor "
            f"(check {F1_ABOVE_FLOOR.name}): materialize model_metrics first"
        )
    metadata = check.event.asset_check_evaluation.metadata
    if check.status == CHECK_FAILED:
        raise dg.Failure(
            f"skin_classifier failed its check {F1_ABOVE_FLOOR.name} (F1 {metadata['F1'].value:.6f} below the floor "
            f"{metadata['Floor'].value}, run {check.run_id[:8]}): not promoted"
        )
    return metadata["Floor"].value


class ColourSplitConfig(dg.Config):
    test_fraction: float = Field(default=TEST_FRACTION, gt=0.0, lt=1.0, description="Share of colours held out for testing")


@dg.multi_asset(
    outs={
        "train_pixels": dg.AssetOut(
            group_name=TRAINING,
            automation_condition=EAGER_UNLESS_BLOCKED,
            kinds={"duckdb", "pandas"},
            metadata=SPLIT_PIXEL_COLUMNS,
            description="Pixels the classifier learns from: no colour here appears in test_pixels.",
        ),
        "test_pixels": dg.AssetOut(
            group_name=TRAINING,
            automation_condition=EAGER_UNLESS_BLOCKED,
            kinds={"duckdb", "pandas"},
            metadata=SPLIT_PIXEL_COLUMNS,
            description="Held-out pixels for evaluation: colours never seen in training.",
        ),
    },
    # Checked where the split is made, on the frames in hand (no second step reloading both).
    check_specs=[
        dg.AssetCheckSpec(
            "colours_disjoint",
            asset="test_pixels",
            blocking=True,
            description="No (B, G, R) colour appears in both train_pixels and test_pixels.",
        )
    ],
)
def train_and_test_pixels(
    context: dg.AssetExecutionContext, config: ColourSplitConfig, validated_skin_pixels: pd.DataFrame
):
    """Split validated pixels by colour, so that each (B, G, R) colour lands on one side only.

    Batches whose blocking check failed are held back (named in the metadata), as the check says.
    """
    stored_batches = sorted(validated_skin_pixels["batch"].unique())
    # Training quietly on fewer batches than were validated would look like a good run.
    missing = batches_missing_from_the_warehouse(context.instance, stored_batches)
    if missing:
        raise dg.Failure(
            f"the warehouse holds no rows of {len(missing)} validated batch(es) that had rows when validated: "
            f"{', '.join(missing)} (was the DuckDB file replaced or lost?). Ingest them again "
            "(ingest_batch_job with their partitions) or delete their partitions, then train."
        )
    held_back = batches_failing_their_check(context.instance, stored_batches)
    if held_back:
        context.log.warning(f"held back, their blocking check failed: {', '.join(held_back)}")
        validated_skin_pixels = validated_skin_pixels[~validated_skin_pixels["batch"].isin(held_back)]
        if validated_skin_pixels.empty:
            raise SplitError(f"every stored batch is held back, their blocking check failed: {', '.join(held_back)}")
    split = split_by_colour(validated_skin_pixels, config.test_fraction)
    overlap = split.colour_overlap()
    for name, frame in (("train_pixels", split.train), ("test_pixels", split.test)):
        yield dg.Output(
            frame,
            output_name=name,
            metadata={
                "Rows": dg.MetadataValue.int(len(frame)),
                "Share of rows": dg.MetadataValue.float(len(frame) / len(validated_skin_pixels)),
                "Skin share": dg.MetadataValue.float(class_balance(frame)),
                "Distinct colours": dg.MetadataValue.int(int(frame[["B", "G", "R"]].drop_duplicates().shape[0])),
                "Colours on both sides": dg.MetadataValue.int(overlap),
                "Rows by batch": markdown_table(
                    frame.groupby("batch", observed=True).size().rename("rows").reset_index()
                ),
                "Batches held back (blocking check failed)": dg.MetadataValue.text(", ".join(held_back) or "none"),
            },
        )
    yield dg.AssetCheckResult(
        check_name="colours_disjoint",
        asset_key="test_pixels",
        passed=overlap == 0,
        description="no colour is on both sides" if overlap == 0 else f"{overlap:,} colours are on both sides: the split leaks",
        metadata={"Colours on both sides": dg.MetadataValue.int(overlap)},
    )


@dg.asset(
    group_name=TRAINING,
    io_manager_key="model_io_manager",
    kinds={"scikitlearn"},
    automation_condition=EAGER_UNLESS_BLOCKED,
)
def skin_classifier(config: SkinClassifierConfig, train_pixels: pd.DataFrame) -> dg.Output:
    """The candidate classifier: (B, G, R) -> skin or not, fitted on train_pixels."""
    parameters = config.estimator.hyperparameters()
    fitted = fit_classifier(build_estimator(config.estimator.kind, **parameters), train_pixels)
    early_stopping = {}
    if fitted.held_out_rows:
        early_stopping["Rows fitted"] = dg.MetadataValue.int(fitted.fitted_rows)
        early_stopping["Rows held out for early stopping (own colours)"] = dg.MetadataValue.int(fitted.held_out_rows)
    if fitted.iterations is not None:
        early_stopping["Boosting rounds run"] = dg.MetadataValue.int(fitted.iterations)
    return dg.Output(
        fitted.model,
        metadata={
            "Estimator": type(fitted.model).__name__,
            "Parameters": dg.MetadataValue.json(parameters),
            "Training rows": dg.MetadataValue.int(fitted.training_rows),
            **early_stopping,
            "Training batches": dg.MetadataValue.json(sorted(train_pixels["batch"].unique().tolist())),
            "Training skin share": dg.MetadataValue.float(class_balance(train_pixels)),
            # production_skin_classifier checks it: a candidate is judged only with its own split.
            TRAINING_DATA_SHA256: data_identity(train_pixels)["sha256"],
            "Fit time (s)": dg.MetadataValue.float(round(fitted.fit_seconds, 3)),
        },
    )


def failed_attempts_before(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """The runs this run re-executes (its parent, the parent's parent, …) that failed or were cancelled.

    Those are earlier attempts at the same work (a retry, a re-execution from failure); a
    successful run re-executed later keeps its evaluation.
    """
    failed, parent_id = [], run.parent_run_id
    while parent_id:
        parent = instance.get_run_by_id(parent_id)
        if parent is None:  # deleted from the instance: its history row is no longer tied to this run
            break
        if parent.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            failed.append(parent.run_id)
        parent_id = parent.parent_run_id
    return failed


class ModelMetricsConfig(dg.Config):
    min_f1: float = Field(default=MIN_F1, ge=0.0, le=1.0, description="Lowest F1 on test_pixels a model may have")


@dg.asset(
    group_name=TRAINING,
    kinds={"duckdb", "scikitlearn"},
    metadata=columns.MODEL_METRICS,
    automation_condition=EAGER_UNLESS_BLOCKED,
    check_specs=[
        dg.AssetCheckSpec(
            "f1_above_floor",
            asset="model_metrics",
            blocking=True,
            description="The candidate's F1 on colour-disjoint test pixels is at least the configured floor (min_f1).",
        )
    ],
    # Its colours and labels (for the check that the candidate was fitted on it), not its batches.
    ins={"train_pixels": dg.AssetIn(metadata={"columns": ["B", "G", "R", "is_skin"]})},
)
def model_metrics(
    context: dg.AssetExecutionContext,
    config: ModelMetricsConfig,
    skin_classifier,
    train_pixels: pd.DataFrame,
    test_pixels: pd.DataFrame,
    warehouse: Warehouse,
    blob_store: BlobStore,
):
    """The candidate's quality on test_pixels: accuracy, precision, recall, F1, ROC AUC, confusion matrix."""
    training = data_identity(train_pixels)
    card = require_candidate_fitted_on(context.instance, training)
    metrics = evaluate_classifier(skin_classifier, test_pixels)
    # The scores weigh each pixel (colours repeat: common colours count more). Each colour once:
    each_colour_once = evaluate_classifier(skin_classifier, test_pixels.drop_duplicates(["B", "G", "R", "is_skin"]))
    provenance = Provenance(
        parameters=card["Parameters"].value if "Parameters" in card else None,
        model_sha256=card["sha256"].value if "sha256" in card else None,
        training_data_sha256=training["sha256"],
        test_data_sha256=data_identity(test_pixels)["sha256"],
    )
    row = metrics_row(metrics, skin_classifier, len(train_pixels), context.run.run_id, provenance)
    evaluations = warehouse.append_metrics(row, replacing_run_ids=failed_attempts_before(context.instance, context.run))
    scores = {SCORE_LABELS[name]: value for name, value in metrics.scores().items()}
    plots = {"Confusion matrix": confusion_matrix_png(metrics), "ROC curve": roc_curve_png(metrics)}
    yield dg.Output(
        row,
        metadata={
            **{name: dg.MetadataValue.float(round(value, 6)) for name, value in scores.items()},
            "Scores": markdown_table(pd.DataFrame({"metric": list(scores), "value": [f"{v:.6f}" for v in scores.values()]})),
            **{name: markdown_image(png, name) for name, png in plots.items()},
            **stored_images(blob_store, f"model_metrics/{context.run.run_id}", plots),
            "F1, each test (colour, label) once": dg.MetadataValue.float(round(each_colour_once.f1, 6)),
            "Training rows": dg.MetadataValue.int(len(train_pixels)),
            "Test rows": dg.MetadataValue.int(metrics.test_rows),
            "Distinct test (colour, label) pairs": dg.MetadataValue.int(each_colour_once.test_rows),
            "Predict time (s)": dg.MetadataValue.float(round(metrics.predict_seconds, 3)),
            "Evaluations in history": dg.MetadataValue.int(evaluations),
            "History table": warehouse.table_name(METRICS_HISTORY),
        },
    )
    passed = meets_f1_floor(metrics, config.min_f1)
    yield dg.AssetCheckResult(
        check_name="f1_above_floor",
        passed=passed,
        description=f"F1 {metrics.f1:.5f} {'is at or above' if passed else 'is below'} the floor {config.min_f1}",
        metadata={
            "F1": dg.MetadataValue.float(metrics.f1),
            "Floor": dg.MetadataValue.float(config.min_f1),
            TEST_DATA_SHA256: provenance.test_data_sha256,
        },
    )
