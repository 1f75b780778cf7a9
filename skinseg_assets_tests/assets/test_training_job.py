"""The whole graph, materialized in-process on the full bundled data set."""

import base64
import json

import duckdb
import numpy as np
import pytest

from skinseg_assets.pixels.champion import data_identity
from skinseg_assets.pixels.metrics import evaluate_classifier
from skinseg_assets.pixels.split import colour_key
from skinseg_assets.resources import DUCKDB_FILE
from skinseg_assets_tests.helpers import local_path, run_training_job

UCI_ROWS = 245_057


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One full training_job run shared by the tests of this module."""
    import dagster as dg

    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKINSEG_DATA_DIR", str(root / "data"))
        patch.delenv("SKINSEG_DEPLOYMENT", raising=False)
        (root / "home").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
            defs, result = run_training_job(instance)
            yield {"defs": defs, "result": result, "instance": instance, "data_dir": root / "data"}


def value(trained, key):
    return trained["defs"].load_asset_value(key, instance=trained["instance"])


def test_run_succeeds_and_every_check_passes(trained):
    result = trained["result"]
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {evaluation.check_name for evaluation in evaluations} == {
        "validated_pixels_schema",
        "colours_disjoint",
        "f1_above_floor",
        "drift_within_threshold",
    }
    assert all(evaluation.passed for evaluation in evaluations)
    # The defaults the README documents, as the checks applied them.
    thresholds = {
        "validated_pixels_schema": ("Allowed rejected share", 0.01),
        "f1_above_floor": ("Floor", 0.997),
        "drift_within_threshold": ("Threshold", 0.25),
    }
    for evaluation in evaluations:
        if evaluation.check_name in thresholds:
            key, documented = thresholds[evaluation.check_name]
            assert evaluation.metadata[key].value == documented, evaluation.check_name
    descriptions = {evaluation.check_name: evaluation.description for evaluation in evaluations}
    assert descriptions["colours_disjoint"] == "no colour is on both sides"
    assert descriptions["validated_pixels_schema"] == f"{UCI_ROWS:,} rows hold the schema; 0.00% rejected (allowed 1.00%)"
    assert descriptions["f1_above_floor"].startswith("F1 0.99") and descriptions["f1_above_floor"].endswith(
        "is at or above the floor 0.997"
    )
    # The only batch has no other batches' training data to be compared with: it passes, saying so.
    (drift,) = [evaluation for evaluation in evaluations if evaluation.check_name == "drift_within_threshold"]
    assert drift.metadata["Compared"].value is False and drift.metadata["Significance"].value == 0.0001
    assert drift.description.startswith("not compared: ")
    assert "Largest PSI" not in drift.metadata  # no distance where nothing was measured
    (report,) = result.asset_materializations_for_node("pixel_drift_report")
    assert not {"Largest PSI", "Skin share (training data)", "Channels"} & set(report.metadata)
    assert report.metadata["Skin share (batch)"].value == pytest.approx(50_859 / UCI_ROWS, abs=1e-4)


def test_every_row_is_accounted_for(trained):
    validated = value(trained, "validated_skin_pixels")
    rejected = value(trained, "rejected_skin_pixels")
    assert len(validated) + len(rejected) == UCI_ROWS
    assert int(validated["is_skin"].sum()) == 50_859
    assert len(rejected) == 0


def test_split_is_colour_disjoint_and_covers_all_validated_rows(trained):
    train, test = value(trained, "train_pixels"), value(trained, "test_pixels")
    assert len(train) + len(test) == UCI_ROWS
    assert len(np.intersect1d(colour_key(train), colour_key(test))) == 0
    assert 0.15 < len(test) / UCI_ROWS < 0.25
    for side in (train, test):
        assert set(side["is_skin"].unique()) == {True, False}


def test_model_meets_the_quality_bar_on_unseen_colours(trained):
    metrics = value(trained, "model_metrics").iloc[0]
    assert metrics["accuracy"] >= 0.999
    assert metrics["f1"] >= 0.997
    assert metrics["test_rows"] + metrics["training_rows"] == UCI_ROWS
    # Each cell, counted here from the stored test pixels and the stored model's own predict().
    test = value(trained, "test_pixels")
    predicted_skin = value(trained, "skin_classifier").predict(test[["B", "G", "R"]].to_numpy()).astype(bool)
    actual_skin = test["is_skin"].to_numpy(dtype=bool)
    counted = {
        "true_negatives": int((~predicted_skin & ~actual_skin).sum()),
        "false_positives": int((predicted_skin & ~actual_skin).sum()),
        "false_negatives": int((~predicted_skin & actual_skin).sum()),
        "true_positives": int((predicted_skin & actual_skin).sum()),
    }
    assert {name: int(metrics[name]) for name in counted} == counted


def test_metrics_are_readable_in_the_ui(trained):
    materialization = trained["result"].asset_materializations_for_node("model_metrics")[0]
    metadata = materialization.metadata
    stored = value(trained, "model_metrics").iloc[0]
    for key, column in (("Accuracy", "accuracy"), ("Precision", "precision"), ("Recall", "recall"), ("F1", "f1"), ("ROC AUC", "roc_auc")):
        assert metadata[key].value == pytest.approx(stored[column], abs=1e-6), key
        assert f"{stored[column]:.6f}" in metadata["Scores"].value, key
    for key in ("Confusion matrix", "ROC curve"):
        assert metadata[key].value.startswith("![") and "data:image/png;base64," in metadata[key].value
        # The same image is kept in the blob store, under the run that drew it.
        stored = local_path(metadata[f"{key} file"].value)
        assert stored.parent.name == trained["result"].run_id and stored.parent.parent.name == "model_metrics"
        assert base64.b64encode(stored.read_bytes()).decode() in metadata[key].value
    # Besides the pixel-weighted scores: F1 counting each test colour once.
    distinct = value(trained, "test_pixels").drop_duplicates(["B", "G", "R", "is_skin"])
    assert metadata["Distinct test (colour, label) pairs"].value == len(distinct) < metadata["Test rows"].value
    expected = evaluate_classifier(value(trained, "skin_classifier"), distinct).f1
    assert metadata["F1, each test (colour, label) once"].value == pytest.approx(expected, abs=1e-6)


def test_model_card_and_model_file(trained):
    materialization = trained["result"].asset_materializations_for_node("skin_classifier")[0]
    card = materialization.metadata
    assert card["Estimator"].value == "HistGradientBoostingClassifier"
    assert card["Training rows"].value == len(value(trained, "train_pixels"))
    assert card["Parameters"].value["max_iter"] == 300
    # Early stopping held out some training colours and stopped before max_iter.
    held_out = card["Rows held out for early stopping (own colours)"].value
    assert card["Rows fitted"].value + held_out == card["Training rows"].value and held_out > 0
    assert 0 < card["Boosting rounds run"].value < 300
    model_file = trained["data_dir"] / "blobs" / "skin_classifier.skops"
    assert model_file.is_file()
    assert card["sha256"].value == __import__("hashlib").sha256(model_file.read_bytes()).hexdigest()


def test_the_catalogue_columns_are_the_tables_columns(trained):
    """Each table's columns, as the UI's catalogue lists them, against the table the run wrote."""
    import dagster as dg

    pandera_columns = {"validated_skin_pixels", "train_pixels", "test_pixels"}  # typed by the Pandera model
    with duckdb.connect(str(trained["data_dir"] / DUCKDB_FILE), read_only=True) as connection:
        for asset in (*pandera_columns, "raw_skin_pixels", "rejected_skin_pixels", "pixel_drift_report", "model_metrics"):
            key = dg.AssetKey(asset)
            declared = trained["defs"].resolve_assets_def(key).specs_by_key[key].metadata["dagster/column_schema"].columns
            stored = connection.execute(
                "select column_name, data_type from duckdb_columns() where schema_name = 'skinseg' "
                "and table_name = ? order by column_index",
                [asset],
            ).fetchall()
            assert [column.name for column in declared] == [name for name, _ in stored], asset
            if asset not in pandera_columns:
                assert [column.type for column in declared] == [data_type for _, data_type in stored], asset
            assert all(column.description for column in declared), asset


def test_raw_metadata_names_source_rows_and_checksum(trained):
    metadata = trained["result"].asset_materializations_for_node("raw_skin_pixels")[0].metadata
    assert metadata["Rows"].value == UCI_ROWS
    assert metadata["sha256"].value == "008f1fb6a169498dec54fb5951be6478e5465942cc4f6df3b5dabbe484c9a98f"
    assert "Skin_NonSkin.txt" in metadata["Source"].value


def test_metrics_history_grows_by_one_row_per_evaluation(trained):
    import dagster as dg

    database = trained["data_dir"] / DUCKDB_FILE

    def history_rows():
        with duckdb.connect(str(database), read_only=True) as connection:
            return connection.execute("select count(*) from skinseg.model_metrics_history").fetchone()[0]

    before = history_rows()
    job = trained["defs"].resolve_job_def("training_job")
    result = job.execute_in_process(
        instance=trained["instance"], asset_selection=[dg.AssetKey("model_metrics")]
    )
    assert result.success
    assert history_rows() == before + 1
    # The row says which model, configured how, fitted on which pixels, it scored.
    card = trained["result"].asset_materializations_for_node("skin_classifier")[0].metadata
    with duckdb.connect(str(database), read_only=True) as connection:
        parameters, model_sha256, training_sha256, test_sha256 = connection.execute(
            "select parameters, model_sha256, training_data_sha256, test_data_sha256 "
            "from skinseg.model_metrics_history where run_id = ?",
            [result.run_id],
        ).fetchone()
    assert json.loads(parameters) == card["Parameters"].value
    assert model_sha256 == card["sha256"].value
    assert training_sha256 == card["Training data sha256"].value
    assert test_sha256 == data_identity(value(trained, "test_pixels"))["sha256"]
    (floor_check,) = result.get_asset_check_evaluations()
    assert floor_check.metadata["Test data sha256"].value == test_sha256
