"""Ingestion through Dagster: bad rows are quarantined in the run, bad files fail it clearly."""

import logging

import dagster as dg
import duckdb
import pytest

from skinseg_assets.checks import validated_pixels_schema
from skinseg_assets.definitions import build_definitions
from skinseg_assets.pixels.batches import BUNDLED_BATCH
from skinseg_assets_tests.helpers import check_evaluation, land_file, pixel_text, source_config, write_pixels

INGESTION_KEYS = [dg.AssetKey(name) for name in ("raw_skin_pixels", "validated_skin_pixels", "rejected_skin_pixels")]
GOOD_ROWS = [(74, 85, 123, 1), (10, 20, 30, 2), (200, 210, 220, 2), (90, 120, 180, 1)]


def ingest(instance, path, max_rejected_share=None):
    run_config = source_config(path)
    if max_rejected_share is not None:
        run_config["ops"]["validated_skin_pixels_validated_pixels_schema"] = {
            "config": {"max_rejected_share": max_rejected_share}
        }
    defs = build_definitions()
    result = defs.resolve_job_def("training_job").execute_in_process(
        instance=instance, run_config=run_config, asset_selection=INGESTION_KEYS, raise_on_error=False
    )
    return defs, result


def test_bad_rows_are_quarantined_with_reasons_and_nothing_is_lost(tmp_path, data_dir, instance):
    rows = GOOD_ROWS + [(300, 1, 1, 2), (-5, 1, 1, 1), ("abc", 1, 1, 1), (1, "", 1, 2), (1, 2, 3, 7)]
    path = write_pixels(tmp_path / "batch.txt", rows)
    defs, result = ingest(instance, path, max_rejected_share=0.9)
    assert result.success
    validated = defs.load_asset_value("validated_skin_pixels", instance=instance)
    rejected = defs.load_asset_value("rejected_skin_pixels", instance=instance)
    assert len(validated) + len(rejected) == len(rows)
    assert list(validated["line_number"]) == [1, 2, 3, 4]
    assert list(rejected["line_number"]) == [5, 6, 7, 8, 9]
    assert list(rejected["rules"]) == ["out_of_range", "out_of_range", "not_an_integer", "missing_value", "unknown_label"]
    assert rejected.loc[0, "reasons"] == f"{path} line 5: B='300' is outside 0-255 [out_of_range]"
    assert rejected.loc[2, "B"] == "abc"  # the original text is kept
    metadata = result.asset_materializations_for_node("validated_and_rejected_skin_pixels")
    rejected_metadata = next(m for m in metadata if m.asset_key.path == ["rejected_skin_pixels"]).metadata
    assert "out_of_range | a colour channel is outside 0-255 | 2" in rejected_metadata["Rows by rule"].value


def test_rejected_share_above_the_bound_fails_the_blocking_check(tmp_path, data_dir, instance):
    path = write_pixels(tmp_path / "mostly-bad.txt", GOOD_ROWS + [(999, 1, 1, 1)] * 4)
    _, result = ingest(instance, path, max_rejected_share=0.25)
    evaluation = check_evaluation(result, "validated_pixels_schema")
    assert not evaluation.passed
    assert evaluation.metadata["Rejected share"].value == pytest.approx(0.5)
    assert "line 5: B='999' is outside 0-255" in evaluation.metadata["Rejected rows (first 20)"].value
    # What the run's page and log say, without opening the metadata.
    assert evaluation.description == (
        f"4 of 8 rows rejected (50.0000%), more than the allowed 25.00% (first: {path} line 5: B='999' is outside "
        "0-255 [out_of_range]; all in rejected_skin_pixels)"
    )
    assert not result.success


def test_rejected_share_within_the_bound_passes(tmp_path, data_dir, instance):
    path = write_pixels(tmp_path / "one-bad.txt", GOOD_ROWS * 30 + [(1, 2, 3, 0)])
    _, result = ingest(instance, path)
    assert result.success
    evaluation = check_evaluation(result, "validated_pixels_schema")
    assert evaluation.passed and evaluation.description == "120 rows hold the schema; 0.83% rejected (allowed 1.00%)"
    # A run that passes still says, in its log, that a row was rejected and where it is kept.
    warnings = [
        record.user_message for record in instance.all_logs(result.run_id) if record.level == logging.WARNING
    ]
    assert (
        f"1 of 121 rows of {path} rejected (0.83%), kept with their reasons in rejected_skin_pixels, partition "
        f"{BUNDLED_BATCH}. First: {path} line 121: label='0' is neither 1 (skin) nor 2 (non-skin) [unknown_label]"
    ) in warnings


@pytest.mark.parametrize(
    ("bad_rows", "passes", "description"),
    [
        (1, True, "99 rows hold the schema; 1.00% rejected (allowed 1.00%)"),
        (2, False, "2 of 100 rows rejected (2.0000%), more than the allowed 1.00% (first: "),
    ],
    ids=["exactly-the-bound", "over-it"],
)
def test_a_rejected_share_exactly_at_the_bound_passes(tmp_path, data_dir, instance, bad_rows, passes, description):
    """The bound is "at most" max_rejected_share (default 0.01): 1 bad row in 100 is allowed, 2 are not."""
    good = (GOOD_ROWS * 25)[: 100 - bad_rows]
    path = write_pixels(tmp_path / "batch.txt", good + [(1, 2, 3, 0)] * bad_rows)
    _, result = ingest(instance, path)
    evaluation = check_evaluation(result, "validated_pixels_schema")
    assert evaluation.passed is passes and result.success is passes
    assert evaluation.description.startswith(description)


def test_a_file_of_the_wrong_shape_fails_the_run_naming_file_and_problem(tmp_path, data_dir, instance):
    path = tmp_path / "three-columns.txt"
    path.write_text("74\t85\t123\n1\t2\t3\n")
    _, result = ingest(instance, path)
    assert not result.success
    failure = result.failure_data_for_node("raw_skin_pixels")
    problem = "line 1 has 3 fields, expected 4 (B, G, R, label): a column is missing"
    assert f"{path}: {problem}" in failure.error.message
    assert failure.user_failure_data.metadata["Problem"].value == problem
    assert path.read_text() == "74\t85\t123\n1\t2\t3\n"  # the source is never modified


def test_a_missing_source_file_is_named(tmp_path, data_dir, instance):
    _, result = ingest(instance, tmp_path / "nowhere.txt")
    assert not result.success
    assert "nowhere.txt: does not exist" in result.failure_data_for_node("raw_skin_pixels").error.message


@pytest.mark.parametrize("name", ["environ", "db_password", "pixels.txt.bak"])
def test_a_configured_source_that_is_not_a_pixel_file_name_is_not_read(tmp_path, data_dir, instance, name):
    # Whoever may launch a run sets source_uri: /proc/self/environ or a mounted secret is refused unread.
    secret = tmp_path / name
    secret.write_text("DAGSTER_PG_PASSWORD=hunter2\n")
    _, result = ingest(instance, secret)
    assert not result.success
    message = result.failure_data_for_node("raw_skin_pixels").error.message
    assert f"{secret}: is not read: only files named *.txt, *.tsv, *.csv, *.parquet are pixel files" in message
    assert "hunter2" not in message and result.get_asset_materialization_events() == []


def test_a_gs_source_is_read_from_the_bucket(gcs_bucket, data_dir, instance):
    source = land_file(f"gs://{gcs_bucket}/landing", "batch-1.txt", pixel_text(GOOD_ROWS))
    defs, result = ingest(instance, source)
    assert result.success
    raw_metadata = result.asset_materializations_for_node("raw_skin_pixels")[0].metadata
    assert raw_metadata["Source"].value == f"gs://{gcs_bucket}/landing/batch-1.txt"
    assert len(defs.load_asset_value("validated_skin_pixels", instance=instance)) == len(GOOD_ROWS)


def test_the_schema_check_run_again_on_a_stored_batch_changed_outside_skinseg_fails_showing_the_cases(tmp_path, data_dir, instance):
    """The output type stops a frame that breaks the schema before it is stored; the check validates
    what is stored, which is what the split reads. Run on its own, it catches a table changed since."""
    _, result = ingest(instance, write_pixels(tmp_path / "batch.txt", GOOD_ROWS))
    assert result.success and check_evaluation(result, "validated_pixels_schema").passed
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as connection:  # a hand edit
        connection.execute("update skinseg.validated_skin_pixels set line_number = 0 where line_number = 3")

    # As "Execute" on the check in the UI: the check alone, on the stored batch.
    check_only = dg.define_asset_job("schema_check_only", selection=dg.AssetSelection.checks(validated_pixels_schema))
    defs = dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[check_only]))
    rerun = defs.resolve_job_def("schema_check_only").execute_in_process(
        instance=instance, tags={"dagster/partition": BUNDLED_BATCH}, raise_on_error=False
    )
    evaluation = check_evaluation(rerun, "validated_pixels_schema")
    assert not evaluation.passed
    assert evaluation.metadata["Schema failures"].value == 1
    cases = evaluation.metadata["Schema failure cases"].value
    assert "line_number" in cases and "greater_than_or_equal_to(1)" in cases
    assert evaluation.metadata["Rejected share"].value == 0.0  # the schema alone failed it
    assert rerun.get_asset_materialization_events() == []  # the check ran alone
