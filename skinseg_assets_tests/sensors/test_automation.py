"""Declarative automation: a newly validated batch retrains downstream once; a failing batch does not."""

import dagster as dg
import pytest

from skinseg_assets.definitions import build_definitions
from skinseg_assets.partitions import pixel_batches
from skinseg_assets.pixels.batches import BUNDLED_BATCH
from skinseg_assets.resources import DUCKDB_FILE
from skinseg_assets_tests.helpers import (
    check_evaluation,
    run_training_job,
    sample_run_config,
    source_config,
    write_pixels,
    write_uci_sample,
)

DOWNSTREAM = {"train_pixels", "test_pixels", "skin_classifier", "model_metrics"}


def requested(result) -> dict[str, set]:
    """Asset name -> requested partition keys (None for an unpartitioned asset)."""
    names: dict[str, set] = {}
    for request in result.results:
        if request.true_subset.size:
            key = request.key
            if isinstance(key, dg.AssetKey):
                partitions = request.true_subset.expensively_compute_partition_keys() if request.true_subset.is_partitioned else {None}
                names.setdefault(key.to_user_string(), set()).update(partitions)
    return names


def ingest(defs, instance, batch, path):
    instance.add_dynamic_partitions(pixel_batches.name, [batch])
    return defs.resolve_job_def("ingest_batch_job").execute_in_process(
        instance=instance, partition_key=batch, run_config=source_config(path), raise_on_error=False
    )


@pytest.fixture
def trained(tmp_path, data_dir, instance):
    """A model trained on the bundled batch (a sample of it, for speed), automation evaluated once."""
    defs = build_definitions()
    sample = write_uci_sample(tmp_path / "uci-sample.txt")
    _, result = run_training_job(instance, sample_run_config(sample), defs=defs)
    assert result.success
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert not (set(requested(first)) & DOWNSTREAM), "nothing is stale right after a full training run"
    return defs, first.cursor


def test_a_newly_validated_batch_requests_the_downstream_assets_once(trained, instance, tmp_path):
    defs, cursor = trained
    day = write_uci_sample(tmp_path / "day-1.txt", every=40)
    assert ingest(defs, instance, "day-1.txt", day).success
    after_batch = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    names = requested(after_batch)
    assert DOWNSTREAM <= set(names)
    assert names["pixel_drift_report"] == {"day-1.txt"}
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after_batch.cursor)
    assert not (set(requested(again)) & DOWNSTREAM), "the same batch is not requested twice"


def test_the_retrain_a_batch_starts_does_not_redo_the_other_batches_drift_reports(trained, instance, tmp_path):
    defs, cursor = trained
    assert ingest(defs, instance, "day-1.txt", write_uci_sample(tmp_path / "day-1.txt", every=40)).success
    after_batch = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert requested(after_batch)["pixel_drift_report"] == {"day-1.txt"}
    # What the automation sensor then launches: the retrain, and the new batch's report.
    everything = defs.resolve_implicit_global_asset_job_def()
    retrain = [dg.AssetKey(name) for name in sorted(DOWNSTREAM)]
    floor = {"ops": {"model_metrics": {"config": {"min_f1": 0.95}}}}  # a sample trains a weaker model
    assert everything.execute_in_process(instance=instance, asset_selection=retrain, run_config=floor).success
    after_retrain = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after_batch.cursor)
    report = everything.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("pixel_drift_report")], partition_key="day-1.txt"
    )
    assert report.success
    after_report = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after_retrain.cursor)
    later = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after_report.cursor)
    for evaluation in (after_retrain, after_report, later):  # the sensor's next ticks
        assert "pixel_drift_report" not in requested(evaluation), "a batch's report is made once, not at each retrain"


def test_on_a_fresh_instance_a_batchs_drift_report_waits_for_the_first_training(data_dir, instance, tmp_path):
    """Nothing trained yet, and a failing batch holds the first training back: the good batch's
    report cannot compare with anything, and must not be asked for (and fail) before there is."""
    defs = build_definitions()
    start = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert ingest(defs, instance, "day-1.txt", write_uci_sample(tmp_path / "day-1.txt", every=40)).success
    ingest(defs, instance, "bad.txt", write_pixels(tmp_path / "bad.txt", [(74, 85, 123, 1)] + [(999, 1, 1, 1)] * 9))
    held_back = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=start.cursor)
    assert requested(held_back) == {}

    assert ingest(defs, instance, "bad.txt", write_uci_sample(tmp_path / "bad-fixed.txt", every=43)).success
    retrain = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=held_back.cursor)
    assert DOWNSTREAM <= set(requested(retrain)) and "pixel_drift_report" not in requested(retrain)
    floor = {"ops": {"model_metrics": {"config": {"min_f1": 0.95}}}}  # a sample trains a weaker model
    everything = defs.resolve_implicit_global_asset_job_def()
    assert everything.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(name) for name in sorted(DOWNSTREAM)], run_config=floor).success
    # Each batch's report now, once.
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=retrain.cursor)
    assert requested(after)["pixel_drift_report"] == {"day-1.txt", "bad.txt"}
    later = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)
    assert "pixel_drift_report" not in requested(later)  # asked for once


def test_training_after_the_warehouse_lost_a_validated_batch_fails_naming_it(trained, instance, data_dir, tmp_path):
    defs, _ = trained
    assert ingest(defs, instance, "day-1.txt", write_uci_sample(tmp_path / "day-1.txt", every=40)).success
    (data_dir / DUCKDB_FILE).unlink()  # a lost volume; Dagster's instance still lists the batch
    _, result = run_training_job(instance, sample_run_config(tmp_path / "uci-sample.txt"), defs=defs, raise_on_error=False)
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "train_and_test_pixels"
    message = failure.step_failure_data.user_failure_data.description
    assert "the warehouse holds no rows of 1 validated batch(es) that had rows when validated: day-1.txt" in message
    assert not result.asset_materializations_for_node("skin_classifier")


def test_a_batch_failing_its_blocking_check_requests_nothing(trained, instance, tmp_path):
    defs, cursor = trained
    bad = write_pixels(tmp_path / "bad.txt", [(74, 85, 123, 1)] + [(999, 1, 1, 1)] * 9)
    result = ingest(defs, instance, "bad.txt", bad)
    assert not check_evaluation(result, "validated_pixels_schema").passed
    after_bad = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert requested(after_bad) == {}


def test_a_manual_training_run_leaves_out_a_batch_failing_its_blocking_check(trained, instance, tmp_path):
    defs, _ = trained
    bad = write_pixels(tmp_path / "bad.txt", [(74, 85, 123, 1)] + [(999, 1, 1, 1)] * 9)
    assert not check_evaluation(ingest(defs, instance, "bad.txt", bad), "validated_pixels_schema").passed
    good = write_uci_sample(tmp_path / "day-1.txt", every=40)
    assert ingest(defs, instance, "day-1.txt", good).success
    # The bad batch's one valid row is stored with its batch; training must not use it.
    assert "bad.txt" in set(defs.load_asset_value("validated_skin_pixels", instance=instance, partition_key="bad.txt")["batch"])
    _, manual = run_training_job(instance, sample_run_config(tmp_path / "uci-sample.txt"), defs=defs)
    assert manual.success
    train = defs.load_asset_value("train_pixels", instance=instance)
    test = defs.load_asset_value("test_pixels", instance=instance)
    batches = set(train["batch"]) | set(test["batch"])
    assert "bad.txt" not in batches
    assert {"day-1.txt", BUNDLED_BATCH} <= batches
    split = manual.asset_materializations_for_node("train_and_test_pixels")[0].metadata
    assert split["Batches held back (blocking check failed)"].value == "bad.txt"


def test_a_later_run_that_never_reaches_the_check_does_not_clear_a_failure(trained, instance, tmp_path):
    defs, _ = trained
    bad = write_pixels(tmp_path / "bad.txt", [(74, 85, 123, 1)] + [(999, 1, 1, 1)] * 9)
    assert not check_evaluation(ingest(defs, instance, "bad.txt", bad), "validated_pixels_schema").passed
    bad.write_text("")  # the replacement cannot be read: the run plans the check but never evaluates it
    assert not ingest(defs, instance, "bad.txt", bad).success
    _, manual = run_training_job(instance, sample_run_config(tmp_path / "uci-sample.txt"), defs=defs)
    assert manual.success
    assert "bad.txt" not in set(defs.load_asset_value("train_pixels", instance=instance)["batch"])
    split = manual.asset_materializations_for_node("train_and_test_pixels")[0].metadata
    assert split["Batches held back (blocking check failed)"].value == "bad.txt"


def test_a_training_run_with_every_batch_held_back_fails_naming_them(data_dir, instance, tmp_path):
    defs = build_definitions()
    bad = write_pixels(tmp_path / "bad.txt", [(74, 85, 123, 1)] + [(999, 1, 1, 1)] * 9)
    assert not check_evaluation(ingest(defs, instance, "bad.txt", bad), "validated_pixels_schema").passed
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("train_pixels"), dg.AssetKey("test_pixels")], raise_on_error=False
    )
    assert not result.success
    message = str(result.failure_data_for_node("train_and_test_pixels").error)
    assert "every stored batch is held back, their blocking check failed: bad.txt" in message


def test_a_batch_whose_fixed_file_passes_its_check_is_trained_on_again(trained, instance, tmp_path):
    defs, _ = trained
    path = tmp_path / "day-1.txt"
    write_pixels(path, [(74, 85, 123, 1)] + [(999, 1, 1, 1)] * 9)
    assert not check_evaluation(ingest(defs, instance, "day-1.txt", path), "validated_pixels_schema").passed
    write_uci_sample(path, every=40)
    assert ingest(defs, instance, "day-1.txt", path).success
    _, manual = run_training_job(instance, sample_run_config(tmp_path / "uci-sample.txt"), defs=defs)
    assert manual.success
    assert "day-1.txt" in set(defs.load_asset_value("train_pixels", instance=instance)["batch"])
    split = manual.asset_materializations_for_node("train_and_test_pixels")[0].metadata
    assert split["Batches held back (blocking check failed)"].value == "none"


def test_deleting_a_failing_batch_lets_retraining_resume(trained, instance, tmp_path):
    defs, cursor = trained
    bad = write_pixels(tmp_path / "bad.txt", [(74, 85, 123, 1)] + [(999, 1, 1, 1)] * 9)
    assert not check_evaluation(ingest(defs, instance, "bad.txt", bad), "validated_pixels_schema").passed
    assert ingest(defs, instance, "day-1.txt", write_uci_sample(tmp_path / "day-1.txt", every=40)).success
    held_back = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert not (set(requested(held_back)) & DOWNSTREAM), "a failing batch holds retraining back"
    instance.delete_dynamic_partition(pixel_batches.name, "bad.txt")  # the README's way out, as the UI does it
    resumed = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=held_back.cursor)
    assert DOWNSTREAM <= set(requested(resumed))
    _, retrained = run_training_job(instance, sample_run_config(tmp_path / "uci-sample.txt"), defs=defs)
    assert retrained.success
    assert set(defs.load_asset_value("train_pixels", instance=instance)["batch"]) == {BUNDLED_BATCH, "day-1.txt"}


def test_an_unreadable_replacement_keeps_the_earlier_rows_in_use(trained, instance, tmp_path):
    defs, _ = trained
    path = write_uci_sample(tmp_path / "day-1.txt", every=40)
    assert ingest(defs, instance, "day-1.txt", path).success
    before = defs.load_asset_value("validated_skin_pixels", instance=instance, partition_key="day-1.txt")
    path.write_text("74;85;123;1\n")  # replaced by a file that cannot be read
    failed = ingest(defs, instance, "day-1.txt", path)
    assert not failed.success and "separated by semicolons" in str(failed.failure_data_for_node("raw_skin_pixels").error)
    after = defs.load_asset_value("validated_skin_pixels", instance=instance, partition_key="day-1.txt")
    assert len(after) == len(before) > 0
    _, retrained = run_training_job(instance, sample_run_config(tmp_path / "uci-sample.txt"), defs=defs)
    assert retrained.success and "day-1.txt" in set(defs.load_asset_value("train_pixels", instance=instance)["batch"])


def test_several_batches_landing_together_coalesce_into_one_request(trained, instance, tmp_path):
    defs, cursor = trained
    for number in (1, 2, 3):
        assert ingest(defs, instance, f"day-{number}.txt", write_uci_sample(tmp_path / f"day-{number}.txt", every=37 + number)).success
    names = requested(dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor))
    assert all(names[name] == {None} for name in DOWNSTREAM)  # one request for each, not one per batch
    assert names["pixel_drift_report"] == {"day-1.txt", "day-2.txt", "day-3.txt"}


def test_the_bundled_batch_is_registered_by_the_training_job_itself(data_dir, instance):
    assert not instance.has_dynamic_partition(pixel_batches.name, BUNDLED_BATCH)
    defs = build_definitions()
    result = defs.resolve_job_def("training_job").execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("raw_skin_pixels")]
    )
    assert result.success
    assert instance.get_dynamic_partitions(pixel_batches.name) == [BUNDLED_BATCH]


def test_a_manual_training_run_alone_requests_no_retraining(trained, instance, tmp_path):
    defs, cursor = trained
    _, manual = run_training_job(instance, sample_run_config(tmp_path / "uci-sample.txt"), defs=defs)
    assert manual.success
    names = requested(dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor))
    assert not (set(names) & DOWNSTREAM)


def test_a_batch_validated_just_after_a_manual_training_run_is_still_trained_on(trained, instance, tmp_path):
    # The manual run trains without the batch and both land between the same two evaluations.
    # eager() would count the model's own update as having handled the batch (the reset wins
    # within one interval, dagster-io/dagster#33587) and never retrain on it.
    defs, cursor = trained
    _, manual = run_training_job(instance, sample_run_config(tmp_path / "uci-sample.txt"), defs=defs)
    assert manual.success
    assert ingest(defs, instance, "day-1.txt", write_uci_sample(tmp_path / "day-1.txt", every=40)).success
    after_both = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert DOWNSTREAM <= set(requested(after_both))
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after_both.cursor)
    assert not (set(requested(again)) & DOWNSTREAM), "requested once, not on every evaluation"
