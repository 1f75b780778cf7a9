"""Queries of the instance's event log that Dagster 1.13 answers only outside its public API.

Kept in one place so that a Dagster upgrade that moves them breaks here, and tested one by one
against a real instance (`skinseg_assets_tests/assets/test_event_log.py`):
- the latest *completed* evaluation of a check, per partition: the public
  `get_latest_asset_check_evaluation_record` takes neither a partition nor a status;
- the partitions of an asset that were ever materialized, and the latest materialization's storage
  id per partition: instance methods Dagster does not mark public (they back its own UI).
"""

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

CHECK_FAILED = AssetCheckExecutionRecordStatus.FAILED
CHECK_SUCCEEDED = AssetCheckExecutionRecordStatus.SUCCEEDED
# A check that got as far as a result; planned ones are left out: a later run that never got as
# far as the check (an unreadable replacement, a queued re-ingest) does not clear a failure.
COMPLETED = {CHECK_SUCCEEDED, CHECK_FAILED}


def latest_completed_check(
    instance: dg.DagsterInstance, check: dg.AssetCheckKey, partition: str | None = None
) -> AssetCheckExecutionRecord | None:
    """The latest evaluation of `check` (of one partition) that passed or failed, if any."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        check, limit=1, status=COMPLETED, partition_filter=PartitionKeyFilter(key=partition) if partition else None
    )
    return records[0] if records else None


def materialized_partitions(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> set[str]:
    """Every partition of the asset that was ever materialized (deleted partitions included)."""
    return set(instance.get_materialized_partitions(asset_key))


def latest_storage_ids(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> dict[str, int]:
    """Per partition, the storage id of the asset's latest materialization (one id per partition,
    however many times each was materialized)."""
    return dict(instance.get_latest_storage_id_by_partition(asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION))
