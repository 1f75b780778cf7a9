"""training_job on a small real sample: the model quality gate, and the GCS deployment."""

import hashlib

import dagster as dg
import pytest

from skinseg_assets_tests.helpers import check_evaluation, gcs_client, run_training_job, sample_run_config, write_uci_sample


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
    "estimator_config, refused",
    [
        ({"svm": {}}, 'unexpected config entry "svm"'),
        # A setting of another estimator is refused, not dropped.
        ({"random_forest": {"max_iter": 5}}, 'unexpected config entry "max_iter" at path root:ops:skin_classifier:config:estimator:random_forest'),
        ({"k_nearest_neighbors": {}, "extra_trees": {}}, "You can only specify a single field at path root:ops:skin_classifier:config:estimator"),
    ],
)
def test_a_wrong_estimator_config_is_refused_before_any_step_runs(estimator_config, refused, uci_sample, data_dir, instance):
    run_config = sample_run_config(uci_sample)
    run_config["ops"]["skin_classifier"] = {"config": {"estimator": estimator_config}}
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
    assert card["uri"].value == f"gs://{gcs_bucket}/skinseg/skin_classifier.skops"
    assert not (data_dir / "blobs").exists()  # nothing went to the local folder
    model = defs.load_asset_value("skin_classifier", instance=instance)
    assert model.predict([[74, 85, 123]]).tolist() == [True]
    assert defs.load_asset_value("model_metrics", instance=instance).iloc[0]["f1"] >= 0.97


def test_a_model_changed_in_the_bucket_is_refused(uci_sample, gcs_bucket, data_dir, instance, monkeypatch):
    from skinseg_assets.resources.model_io_manager import UntrustedModelError

    monkeypatch.setenv("SKINSEG_DEPLOYMENT", "gcs")
    defs, _ = run_training_job(instance, sample_run_config(uci_sample))
    blob = gcs_client().bucket(gcs_bucket).blob("skinseg/skin_classifier.skops")
    blob.upload_from_string(blob.download_as_bytes() + b"\0")
    with pytest.raises(UntrustedModelError, match="changed outside skinseg"):
        defs.load_asset_value("skin_classifier", instance=instance)
