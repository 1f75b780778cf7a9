"""The metrics history: one row per evaluation, whatever attempts a run took, with its provenance."""

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, ROOT_RUN_ID_TAG
from dagster._core.test_utils import create_run_for_test

from skinseg_assets.assets.training import failed_attempts_before
from skinseg_assets.resources.warehouse import METRICS_HISTORY, DuckDBWarehouse

METRICS_HISTORY_TABLE = f"skinseg.{METRICS_HISTORY}"


def evaluation(run_id: str, f1: float, **provenance) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": run_id, "estimator": "HistGradientBoostingClassifier", "f1": f1, **provenance}])


def history(database) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(f"select run_id, f1 from {METRICS_HISTORY_TABLE} order by run_id").fetchall()


def test_a_later_attempt_of_a_run_replaces_its_earlier_row(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(database=str(database))
    assert warehouse.append_metrics(evaluation("run-a", 0.998), ["run-a"]) == 1
    # run-b re-executes run-a, which failed after writing its row.
    assert warehouse.append_metrics(evaluation("run-b", 0.999), ["run-a", "run-b"]) == 1
    assert warehouse.append_metrics(evaluation("run-c", 0.997), ["run-c"]) == 2
    assert history(database) == [("run-b", 0.999), ("run-c", 0.997)]


def test_an_older_history_table_gains_the_provenance_columns(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(database=str(database))
    warehouse.append_metrics(evaluation("old-run", 0.998))
    warehouse.append_metrics(evaluation("new-run", 0.999, model_sha256="ab12", parameters=None))

    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(f"select run_id, model_sha256, parameters from {METRICS_HISTORY_TABLE} order by run_id").fetchall()
        types = dict(connection.execute(f"select column_name, column_type from (describe {METRICS_HISTORY_TABLE})").fetchall())
    assert rows == [("new-run", "ab12", None), ("old-run", None, None)]
    # A column that is empty in its first row is text, so that later rows can fill it.
    assert types["parameters"] == "VARCHAR"


def test_the_attempts_replaced_are_the_failed_runs_this_run_re_executes(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:

        def run(status: dg.DagsterRunStatus, parent=None) -> dg.DagsterRun:
            lineage = {} if parent is None else {"root_run_id": parent.root_run_id or parent.run_id, "parent_run_id": parent.run_id}
            tags = {} if parent is None else {ROOT_RUN_ID_TAG: lineage["root_run_id"], PARENT_RUN_ID_TAG: parent.run_id}
            return create_run_for_test(instance, job_name="training_job", status=status, tags=tags, **lineage)

        failed = run(dg.DagsterRunStatus.FAILURE)
        retry_that_succeeded = run(dg.DagsterRunStatus.SUCCESS, parent=failed)
        re_execution_of_a_success = run(dg.DagsterRunStatus.STARTED, parent=retry_that_succeeded)
        sibling_retry = run(dg.DagsterRunStatus.STARTED, parent=failed)
        unrelated = run(dg.DagsterRunStatus.STARTED)

        assert failed_attempts_before(instance, retry_that_succeeded) == [failed.run_id]
        # The successful run keeps its row; the failed attempt further up is still replaced.
        assert failed_attempts_before(instance, re_execution_of_a_success) == [failed.run_id]
        assert failed_attempts_before(instance, sibling_retry) == [failed.run_id]
        assert failed_attempts_before(instance, unrelated) == []
        # A parent deleted from the instance ends the chain instead of failing the step.
        instance.delete_run(failed.run_id)
        assert failed_attempts_before(instance, retry_that_succeeded) == []
