"""The event-log queries that use Dagster's non-public API, each against a real instance: an
upgrade that changes one fails here, by name."""

import warnings

import dagster as dg

from skinseg_assets.assets.event_log import CHECK_FAILED, latest_completed_check, latest_storage_ids, materialized_partitions

DAYS = dg.StaticPartitionsDefinition(["monday", "tuesday", "wednesday"])
FAIL_ON = {"tuesday"}  # the check fails for this partition
BREAK_ON = set()  # the asset fails for these, before its check runs


@dg.asset(partitions_def=DAYS)
def pixels(context: dg.AssetExecutionContext) -> int:
    if context.partition_key in BREAK_ON:
        raise RuntimeError("unreadable file")
    return 1


with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned checks are a preview feature

    @dg.asset_check(asset=pixels, partitions_def=DAYS, blocking=True)
    def pixels_ok(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=context.partition_key not in FAIL_ON)


@dg.asset
def model() -> int:
    return 1


@dg.asset_check(asset=model)
def model_ok() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False)


def materialize(instance, partition: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([pixels, pixels_ok], partition_key=partition, instance=instance, raise_on_error=False)


def test_latest_completed_check_per_partition_skips_runs_that_never_got_to_the_check():
    with dg.DagsterInstance.ephemeral() as instance:
        assert latest_completed_check(instance, pixels_ok.check_key, "monday") is None
        for day in ("monday", "tuesday"):
            materialize(instance, day)
        monday = latest_completed_check(instance, pixels_ok.check_key, "monday")
        tuesday = latest_completed_check(instance, pixels_ok.check_key, "tuesday")
        assert monday.status != CHECK_FAILED and monday.event.asset_check_evaluation.passed
        assert tuesday.status == CHECK_FAILED and not tuesday.event.asset_check_evaluation.passed
        # A later run that failed before the check (planned, never evaluated) does not clear the failure.
        BREAK_ON.add("tuesday")
        try:
            assert not materialize(instance, "tuesday").success
        finally:
            BREAK_ON.clear()
        assert latest_completed_check(instance, pixels_ok.check_key, "tuesday").run_id == tuesday.run_id
        assert latest_completed_check(instance, pixels_ok.check_key, "wednesday") is None


def test_latest_completed_check_of_an_unpartitioned_check():
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([model, model_ok], instance=instance)
        latest = latest_completed_check(instance, model_ok.check_key)
        assert latest.status == CHECK_FAILED and latest.run_id == result.run_id


def test_materialized_partitions_and_the_latest_storage_id_of_each():
    with dg.DagsterInstance.ephemeral() as instance:
        assert materialized_partitions(instance, pixels.key) == set() and latest_storage_ids(instance, pixels.key) == {}
        for day in ("monday", "tuesday", "monday"):
            materialize(instance, day)
        assert materialized_partitions(instance, pixels.key) == {"monday", "tuesday"}
        records = instance.fetch_materializations(pixels.key, limit=10).records  # newest first
        newest = {}
        for record in records:
            newest.setdefault(record.asset_materialization.partition, record.storage_id)
        assert len(records) == 3 and latest_storage_ids(instance, pixels.key) == newest
