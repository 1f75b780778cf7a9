"""training_job on a small real sample: the model quality gate, and the GCS deployment."""

import gc
import hashlib
import shutil

import dagster as dg
import duckdb
import pandas as pd
import pytest

from skinseg_assets.assets.event_log import CHECK_FAILED, CHECK_SUCCEEDED, latest_completed_check
from skinseg_assets.definitions import build_definitions
from skinseg_assets.pixels.batches import BUNDLED_BATCH
from skinseg_assets.pixels.metrics import evaluate_classifier
from skinseg_assets.pixels.split import colour_key, is_test_colour
from skinseg_assets.resources import DUCKDB_FILE
from skinseg_assets.resources.warehouse import METRICS_HISTORY
from skinseg_assets_tests.helpers import (
    REPO_ROOT,
    check_evaluation,
    gcs_client,
    local_path,
    readme_command,
    run_training_job,
    sample_run_config,
    write_pixels,
    write_uci_sample,
)


@pytest.fixture
def uci_sample(tmp_path):
    return write_uci_sample(tmp_path / "uci-sample.txt")


def test_f1_below_the_floor_fails_the_run(uci_sample, data_dir, instance):
    run_config = sample_run_config(uci_sample, min_f1=1.0)
    _, result = run_training_job(instance, run_config, raise_on_error=False)
    assert not result.success
    evaluation = check_evaluation(result, "f1_above_floor")
    assert not evaluation.passed
    assert evaluation.metadata["Floor"].value == 1.0
    assert evaluation.metadata["F1"].value < 1.0


def test_the_configured_test_fraction_sets_the_split(uci_sample, data_dir, instance):
    run_config = sample_run_config(uci_sample)
    run_config["ops"]["train_and_test_pixels"] = {"config": {"test_fraction": 0.5}}
    defs, result = run_training_job(instance, run_config)
    train = defs.load_asset_value("train_pixels", instance=instance)
    test = defs.load_asset_value("test_pixels", instance=instance)
    # Each colour on the side its hash puts it at 0.5 (at the default 0.2, part of train would be test at 0.5).
    assert is_test_colour(colour_key(test), 0.5).all() and not is_test_colour(colour_key(train), 0.5).any()
    shares = {
        materialization.asset_key.to_user_string(): materialization.metadata["Share of rows"].value
        for materialization in result.asset_materializations_for_node("train_and_test_pixels")
    }
    assert 0.4 < shares["test_pixels"] < 0.6 and shares["train_pixels"] == pytest.approx(1 - shares["test_pixels"])


def test_a_run_re_executed_from_failure_as_the_readme_shows_reuses_the_model_and_replaces_the_failed_row(
    data_dir, tmp_path, monkeypatch
):
    """The floor was set higher than the model reaches; the README's Python re-executes with a lower one."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    classifier_config = {"config": {"estimator": {"hist_gradient_boosting": {"max_iter": 100}}}}
    with dg.DagsterInstance.get() as instance:
        failed_config = {"ops": {"skin_classifier": classifier_config, "model_metrics": {"config": {"min_f1": 1.0}}}}
        _, failed = run_training_job(instance, failed_config, raise_on_error=False)
        assert not failed.success and not failed.asset_materializations_for_node("production_skin_classifier")
        model_card = failed.asset_materializations_for_node("skin_classifier")[0].metadata

        exec(readme_command("reexecute-from-python", "python").replace("<failed run id>", failed.run_id), {})

        (re_executed, _) = instance.get_runs(limit=2)
        assert re_executed.parent_run_id == failed.run_id and re_executed.status == dg.DagsterRunStatus.SUCCESS
        # The failed run's config with the one setting changed, not that setting alone.
        assert re_executed.run_config == {"ops": {"skin_classifier": classifier_config, "model_metrics": {"config": {"min_f1": 0.99}}}}
        steps_run = {record.step_key for record in instance.all_logs(re_executed.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)}
        materialized = {
            record.dagster_event.asset_key.to_user_string()
            for record in instance.all_logs(re_executed.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        }
    # Only the failed step and what it held back ran again; the model came from the blob store.
    assert steps_run == {"model_metrics", "production_skin_classifier"}
    assert "skin_classifier" not in materialized and {"model_metrics", "production_skin_classifier"} <= materialized
    with duckdb.connect(str(data_dir / DUCKDB_FILE), read_only=True) as connection:
        history = connection.execute(f"select run_id, model_sha256 from skinseg.{METRICS_HISTORY}").fetchall()
    # The failed attempt's row is replaced by the re-execution's, which evaluated the model in the blob store.
    stored_model = local_path(model_card["File"].value).read_bytes()
    assert history == [(re_executed.run_id, hashlib.sha256(stored_model).hexdigest())]


@pytest.mark.parametrize(
    "estimator, settings, model_class",
    [
        ("random_forest", {"n_estimators": 20}, "RandomForestClassifier"),
        ("extra_trees", {"n_estimators": 20}, "ExtraTreesClassifier"),
        ("k_nearest_neighbors", {"n_neighbors": 7}, "KNeighborsClassifier"),
    ],
)
def test_the_estimator_comes_from_config(estimator, settings, model_class, uci_sample, data_dir, instance):
    run_config = sample_run_config(uci_sample)
    run_config["ops"]["skin_classifier"] = {"config": {"estimator": {estimator: settings}}}
    defs, result = run_training_job(instance, run_config)
    assert result.success
    card = result.asset_materializations_for_node("skin_classifier")[0].metadata
    model = defs.load_asset_value("skin_classifier", instance=instance)
    assert type(model).__name__ == card["Estimator"].value == model_class
    for name, value in settings.items():
        assert card["Parameters"].value[name] == value
        assert model.get_params()[name] == value


@pytest.mark.parametrize(
    "classifier_config, refused",
    [
        ({"estimator": {"svm": {}}}, 'unexpected config entry "svm"'),
        # A setting of another estimator is refused, not dropped.
        (
            {"estimator": {"random_forest": {"max_iter": 5}}},
            'unexpected config entry "max_iter" at path root:ops:skin_classifier:config:estimator:random_forest',
        ),
        (
            {"estimator": {"k_nearest_neighbors": {}, "extra_trees": {}}},
            "You can only specify a single field at path root:ops:skin_classifier:config:estimator",
        ),
        # The form before 2026-12, settings beside the estimator's name (README, "Settings").
        ({"estimator": "extra_trees", "n_estimators": 200}, 'unexpected config entry "n_estimators"'),
    ],
    ids=["unknown-estimator", "another-estimators-setting", "two-estimators", "pre-2026-12-flat-form"],
)
def test_a_wrong_estimator_config_is_refused_before_any_step_runs(classifier_config, refused, uci_sample, data_dir, instance):
    run_config = sample_run_config(uci_sample)
    run_config["ops"]["skin_classifier"] = {"config": classifier_config}
    with pytest.raises(dg.DagsterInvalidConfigError) as raised:
        run_training_job(instance, run_config)
    assert refused in str(raised.value)
    assert instance.get_runs() == []


def test_gcs_deployment_keeps_the_model_in_the_bucket(uci_sample, gcs_bucket, data_dir, instance, monkeypatch):
    monkeypatch.setenv("SKINSEG_DEPLOYMENT", "gcs")
    defs, result = run_training_job(instance, sample_run_config(uci_sample))
    assert result.success
    blob = gcs_client().bucket(gcs_bucket).blob("skinseg/skin_classifier.skops")
    data = blob.download_as_bytes()
    card = result.asset_materializations_for_node("skin_classifier")[0].metadata
    assert card["sha256"].value == hashlib.sha256(data).hexdigest()
    assert card["File"].value == f"gs://{gcs_bucket}/skinseg/skin_classifier.skops"
    assert not (data_dir / "blobs").exists()  # nothing went to the local folder
    model = defs.load_asset_value("skin_classifier", instance=instance)
    assert model.predict([[74, 85, 123]]).tolist() == [True]
    # The metrics in the warehouse are those of the model in the bucket, on the stored test side.
    test_pixels = defs.load_asset_value("test_pixels", instance=instance)  # every batch's test side
    stored_f1 = defs.load_asset_value("model_metrics", instance=instance).iloc[0]["f1"]
    assert stored_f1 == pytest.approx(evaluate_classifier(model, test_pixels).f1)


def test_a_model_changed_in_the_bucket_is_refused(uci_sample, gcs_bucket, data_dir, instance, monkeypatch):
    from skinseg_assets.resources.model_io_manager import UntrustedModelError

    monkeypatch.setenv("SKINSEG_DEPLOYMENT", "gcs")
    defs, _ = run_training_job(instance, sample_run_config(uci_sample))
    blob = gcs_client().bucket(gcs_bucket).blob("skinseg/skin_classifier.skops")
    blob.upload_from_string(blob.download_as_bytes() + b"\0")
    with pytest.raises(UntrustedModelError, match="changed outside skinseg"):
        defs.load_asset_value("skin_classifier", instance=instance)


def test_a_model_never_written_is_reported_missing(data_dir, instance):
    with pytest.raises(FileNotFoundError):
        build_definitions().load_asset_value("skin_classifier", instance=instance)


def test_a_model_is_not_loaded_without_the_instance_that_recorded_its_sha256(uci_sample, data_dir, instance, tmp_path):
    from skinseg_assets.resources.model_io_manager import UntrustedModelError

    defs, _ = run_training_job(instance, sample_run_config(uci_sample))
    assert defs.load_asset_value("skin_classifier", instance=instance).predict([[74, 85, 123]]).tolist() == [True]
    # e.g. a notebook started with another DAGSTER_HOME
    (tmp_path / "other-home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "other-home")) as other_instance:
        with pytest.raises(UntrustedModelError) as refused:
            defs.load_asset_value("skin_classifier", instance=other_instance)
        message = str(refused.value)
        del refused  # its traceback holds Dagster's resource context open until collected
        gc.collect()
    assert message == (
        f"{(data_dir / 'blobs' / 'skin_classifier.skops').as_uri()}: this Dagster instance has no recorded sha256 "
        "for skin_classifier, so the file cannot be checked; not loaded. Load it with the instance of the run "
        "that wrote it (DAGSTER_HOME, or instance=DagsterInstance.get())"
    )


def test_a_split_with_a_colour_on_both_sides_fails_its_check_and_nothing_is_trained(uci_sample, data_dir, instance, monkeypatch):
    from skinseg_assets.assets import training
    from skinseg_assets.pixels.split import ColourSplit, split_by_colour

    def leaky_split(pixels, test_fraction):
        split = split_by_colour(pixels, test_fraction)
        return ColourSplit(train=split.train, test=pd.concat([split.test, split.train.head(1)], ignore_index=True))

    monkeypatch.setattr(training, "split_by_colour", leaky_split)
    _, result = run_training_job(instance, sample_run_config(uci_sample), raise_on_error=False)
    evaluation = check_evaluation(result, "colours_disjoint")
    assert not evaluation.passed and evaluation.metadata["Colours on both sides"].value == 1
    assert not result.success
    assert not result.asset_materializations_for_node("skin_classifier")


def test_a_drifting_batch_warns_and_does_not_hold_training_back(tmp_path, data_dir, instance):
    from skinseg_assets.partitions import pixel_batches

    first = write_uci_sample(tmp_path / "first.txt")
    run_training_job(instance, sample_run_config(first))  # the bundled batch's partition, from a sample
    # The same pixels, every blue value raised by 100 (capped): the B channel has drifted.
    rows = [line.split("\t") for line in first.read_text().splitlines()]
    shifted = write_pixels(tmp_path / "shifted.txt", [(min(int(b) + 100, 255), g, r, label) for b, g, r, label in rows])
    instance.add_dynamic_partitions(pixel_batches.name, ["shifted"])
    defs = build_definitions()
    result = defs.resolve_job_def("training_job").execute_in_process(
        instance=instance, run_config=sample_run_config(shifted), partition_key="shifted"
    )
    evaluation = check_evaluation(result, "drift_within_threshold")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["Largest PSI"].value > evaluation.metadata["Threshold"].value == 0.25
    assert evaluation.metadata["Compared"].value is True and "B" in evaluation.metadata["Drifted channels"].value
    assert evaluation.description.startswith("drifted: ") and "B" in evaluation.description
    # One result per batch: the shifted batch's warning does not replace the first batch's pass.
    drift_check = dg.AssetCheckKey(dg.AssetKey("pixel_drift_report"), "drift_within_threshold")
    first_result = latest_completed_check(instance, drift_check, BUNDLED_BATCH)
    shifted_result = latest_completed_check(instance, drift_check, "shifted")
    assert first_result.status == CHECK_SUCCEEDED and first_result.partition == BUNDLED_BATCH
    assert shifted_result.status == CHECK_FAILED and shifted_result.partition == "shifted"
    report = result.asset_materializations_for_node("pixel_drift_report")[0].metadata
    histograms = local_path(report["Channels file"].value)  # the report's image, kept in the blob store
    assert histograms.is_relative_to(data_dir / "blobs" / "pixel_drift_report" / "shifted")
    assert histograms.read_bytes().startswith(b"\x89PNG")
    assert result.success  # a warning: the run goes on, the model trains on both batches
    card = result.asset_materializations_for_node("skin_classifier")[0].metadata
    split = result.asset_materializations_for_node("train_and_test_pixels")
    assert sum(m.metadata["Rows"].value for m in split) == 2 * len(rows)
    assert card["Rows fitted"].value + card["Rows held out for early stopping (own colours)"].value == split[0].metadata["Rows"].value
