"""The columns of each table in the warehouse, for the catalogue (UI: Catalog → asset → Columns).

Types are DuckDB's, as the tables hold them, except for the validated pixels and the split: their
columns come from the Pandera model, with its (pandas) types, descriptions and checks. A test
compares every schema here with the tables a run writes.
"""

import dagster as dg

from skinseg_assets.pixels.model import SKIN_DECISION_RULE, SKIN_THRESHOLD
from skinseg_assets.pixels.rules import CHANNELS, REJECTED_COLUMNS
from skinseg_assets.pixels.source import RAW_COLUMNS


def column_schema(*columns: dg.TableColumn) -> dict[str, dg.TableSchema]:
    """Definition metadata that gives an asset its column list in the catalogue."""
    return {"dagster/column_schema": dg.TableSchema(columns=list(columns))}


def _column(name: str, type_: str, description: str) -> dg.TableColumn:
    return dg.TableColumn(name=name, type=type_, description=description)


BATCH = _column("batch", "VARCHAR", "The pixel_batches partition: the landed file the row came from")
LINE_NUMBER = _column("line_number", "BIGINT", "Line of the pixel in its file (row, for Parquet), from 1")
# The raw and rejected frames' columns (source.RAW_COLUMNS, rules.REJECTED_COLUMNS), as stored.
AS_READ = {
    column.name: column
    for column in (
        LINE_NUMBER,
        *(_column(channel, "VARCHAR", f"{name} channel, as read (text)") for channel, name in zip(CHANNELS, ("Blue", "Green", "Red"))),
        _column("label", "VARCHAR", "Label, as read (text): 1 = skin, 2 = non-skin"),
        _column("extra_fields", "VARCHAR", "Fields after the fourth, as read; NULL when there are none"),
        _column("source", "VARCHAR", "The file the row was read from"),
        _column("rules", "VARCHAR", "The rules the row broke, comma-separated"),
        _column("reasons", "VARCHAR", "Each broken rule in words: file, line, column, value and rule"),
    )
}

RAW_SKIN_PIXELS = column_schema(BATCH, *(AS_READ[name] for name in RAW_COLUMNS))
REJECTED_SKIN_PIXELS = column_schema(BATCH, *(AS_READ[name] for name in REJECTED_COLUMNS))


def validated_columns(pandera_type: dg.DagsterType) -> list[dg.TableColumn]:
    """The columns dagster-pandera derived from the Pandera model, with its descriptions and checks."""
    return list(pandera_type.metadata["schema"].schema.columns)


def split_pixels(pandera_type: dg.DagsterType) -> dict[str, dg.TableSchema]:
    """train_pixels and test_pixels: the validated columns without the line number."""
    return column_schema(*(column for column in validated_columns(pandera_type) if column.name != LINE_NUMBER.name))


def _per_channel(prefix: str, meaning: str) -> list[dg.TableColumn]:
    return [_column(f"{prefix}_{channel}", "DOUBLE", f"{meaning} ({channel})") for channel in CHANNELS]


PIXEL_DRIFT_REPORT = column_schema(
    BATCH,
    _column("batch_rows", "BIGINT", "Validated pixels in the batch"),
    _column("reference_rows", "BIGINT", "Pixels it is compared with: the other batches' train_pixels rows"),
    *_per_channel("psi", "Population stability index of the channel against the reference: 0 = same shape"),
    *_per_channel("ks", "Kolmogorov-Smirnov statistic of the channel against the reference"),
    _column("batch_skin_share", "DOUBLE", "Share of the batch's pixels that are skin"),
    _column("reference_skin_share", "DOUBLE", "Share of the reference's pixels (the other batches' train_pixels rows) that are skin"),
    _column("new_colour_share", "DOUBLE", "Share of the batch's pixels whose colour no other batch has"),
)

_COUNTS = (
    ("true_negatives", "Non-skin test pixels predicted non-skin"),
    ("false_positives", "Non-skin test pixels predicted skin"),
    ("false_negatives", "Skin test pixels predicted non-skin"),
    ("true_positives", "Skin test pixels predicted skin"),
)

MODEL_METRICS = column_schema(
    _column("evaluated_at", "TIMESTAMP_NS", "When the candidate was evaluated (UTC)"),
    _column("run_id", "VARCHAR", "The Dagster run that evaluated it"),
    _column("estimator", "VARCHAR", "The scikit-learn estimator's class"),
    _column("training_rows", "BIGINT", "Pixels in train_pixels"),
    _column("test_rows", "BIGINT", "Pixels in test_pixels, which the scores count"),
    *(
        _column(score, "DOUBLE", f"{name} on test_pixels, P(skin) {SKIN_DECISION_RULE} {SKIN_THRESHOLD} as skin")
        for score, name in (("accuracy", "Accuracy"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"))
    ),
    _column("roc_auc", "DOUBLE", "Area under the ROC curve of P(skin) on test_pixels"),
    *(_column(name, "BIGINT", meaning) for name, meaning in _COUNTS),
    _column("parameters", "VARCHAR", "The estimator's parameters, as JSON"),
    _column("model_sha256", "VARCHAR", "sha256 of the stored model file"),
    _column("training_data_sha256", "VARCHAR", "sha256 of the training pixels' (colour, label) pairs, sorted"),
    _column("test_data_sha256", "VARCHAR", "sha256 of the test pixels' (colour, label) pairs, sorted: the rows it was scored on"),
)
