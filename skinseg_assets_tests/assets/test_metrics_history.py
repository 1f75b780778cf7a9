"""The metrics history: one row per evaluation, whatever attempts a run took, with its provenance."""

from types import SimpleNamespace

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, ROOT_RUN_ID_TAG
from dagster._core.test_utils import create_run_for_test

from skinseg_assets.assets.training import METRICS_HISTORY_TABLE, append_metrics_history, run_group_ids
from skinseg_assets.resources.warehouse_io_manager import Warehouse


def evaluation(run_id: str, f1: float, **provenance) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": run_id, "estimator": "HistGradientBoostingClassifier", "f1": f1, **provenance}])


def history(database) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(f"select run_id, f1 from {METRICS_HISTORY_TABLE} order by run_id").fetchall()


def test_a_later_attempt_of_a_run_replaces_its_earlier_row(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(database=str(database))
    assert append_metrics_history(warehouse, evaluation("run-a", 0.998), ["run-a"]) == 1
    # run-b re-executes run-a, which failed after writing its row.
    assert append_metrics_history(warehouse, evaluation("run-b", 0.999), ["run-a", "run-b"]) == 1
    assert append_metrics_history(warehouse, evaluation("run-c", 0.997), ["run-c"]) == 2
    assert history(database) == [("run-b", 0.999), ("run-c", 0.997)]


def test_an_older_history_table_gains_the_provenance_columns(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(database=str(database))
    append_metrics_history(warehouse, evaluation("old-run", 0.998))
    append_metrics_history(warehouse, evaluation("new-run", 0.999, model_sha256="ab12", parameters=None))

    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(f"select run_id, model_sha256, parameters from {METRICS_HISTORY_TABLE} order by run_id").fetchall()
        types = dict(connection.execute(f"select column_name, column_type from (describe {METRICS_HISTORY_TABLE})").fetchall())
    assert rows == [("new-run", "ab12", None), ("old-run", None, None)]
    # A column that is empty in its first row is text, so that later rows can fill it.
    assert types["parameters"] == "VARCHAR"


def test_the_run_group_is_the_root_run_and_its_re_executions(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        root = create_run_for_test(instance, job_name="training_job")
        retry = create_run_for_test(
            instance,
            job_name="training_job",
            root_run_id=root.run_id,
            parent_run_id=root.run_id,
            tags={ROOT_RUN_ID_TAG: root.run_id, PARENT_RUN_ID_TAG: root.run_id},
        )
        other = create_run_for_test(instance, job_name="training_job")

        def group_of(run) -> set[str]:
            return set(run_group_ids(SimpleNamespace(instance=instance, run=run)))

        assert group_of(retry) == group_of(root) == {root.run_id, retry.run_id}
        assert group_of(other) == {other.run_id}
