"""The DuckDB IO manager: frames stored by column name, and tables that gain the columns assets gain."""

from types import SimpleNamespace

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb_pandas import DuckDBPandasTypeHandler

from skinseg_assets.resources.warehouse import DuckDBWarehouse
from skinseg_assets.resources.warehouse_io_manager import ReplacingDuckDbClient, WarehouseIOManager

DAYS = dg.StaticPartitionsDefinition(["monday", "tuesday", "wednesday"])


def stored(database, table: str) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(f"select * from skinseg.{table} order by day").fetchdf()


def write_each_day(tmp_path, table: str, frames: dict[str, pd.DataFrame]):
    """Materialize a day-partitioned asset named `table`, whose partition `day` is `frames[day]`,
    for each day in order, through the IO manager; returns the database file."""

    @dg.asset(name=table, partitions_def=DAYS, metadata={"partition_expr": "day"})
    def each_day(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return frames[context.partition_key]

    database = tmp_path / "warehouse.duckdb"
    resources = {"io_manager": WarehouseIOManager(database=str(database), schema="skinseg")}
    for day in DAYS.get_partition_keys():
        assert dg.materialize([each_day], partition_key=day, resources=resources).success
    return database


def test_a_table_gains_new_columns_and_rows_are_written_by_name(tmp_path):
    frames = {
        "monday": pd.DataFrame({"day": ["monday"], "pixels": [10], "skin": [4], "note": ["first"]}),
        # A release later: columns in another order (same types), a new column, and `note` gone.
        "tuesday": pd.DataFrame({"skin": [7], "day": ["tuesday"], "pixels": [20], "source": ["gs://b/t.txt"]}),
        "wednesday": pd.DataFrame({"source": ["w.txt"], "pixels": [30], "day": ["wednesday"], "skin": [9]}),
    }

    database = write_each_day(tmp_path, "counts", frames)
    table = stored(database, "counts")
    assert list(table.columns) == ["day", "pixels", "skin", "note", "source"]
    rows = table.set_index("day")
    # By name: tuesday's 7 skin pixels are not read as its pixel count.
    assert rows.loc["tuesday", ["pixels", "skin"]].tolist() == [20, 7]
    assert rows.loc["wednesday", ["pixels", "skin", "source"]].tolist() == [30, 9, "w.txt"]
    assert rows.loc["monday", "note"] == "first" and pd.isna(rows.loc["monday", "source"])
    assert pd.isna(rows.loc["tuesday", "note"])


def test_a_text_column_without_values_in_the_first_batch_takes_text_later(tmp_path):
    frames = {
        # No extra fields on monday: DuckDB would type the all-None column NULL.
        "monday": pd.DataFrame({"day": ["monday", "monday"], "extra": [None, None]}, dtype=object),
        # The first row has none, a later one has: the column must be seen to hold text.
        "tuesday": pd.DataFrame({"day": ["tuesday", "tuesday"], "extra": [None, "9"]}, dtype=object),
        "wednesday": pd.DataFrame({"day": ["wednesday"], "extra": ["7\t8"]}, dtype=object),
    }

    database = write_each_day(tmp_path, "lines", frames)
    with duckdb.connect(str(database), read_only=True) as connection:
        assert connection.execute("select data_type from duckdb_columns() where column_name = 'extra'").fetchall() == [("VARCHAR",)]
    assert stored(database, "lines")["extra"].tolist() == [None, None, None, "9", "7\t8"]


def test_an_unpartitioned_table_gains_the_new_column_and_holds_only_the_new_rows(tmp_path):
    shape = {"columns": {"day": ["monday"], "f1": [0.99]}}

    @dg.asset
    def scores() -> pd.DataFrame:
        return pd.DataFrame(shape["columns"])

    database = tmp_path / "warehouse.duckdb"
    resources = {"io_manager": WarehouseIOManager(database=str(database), schema="skinseg")}
    assert dg.materialize([scores], resources=resources).success
    shape["columns"] = {"f1": [0.995], "day": ["tuesday"], "model_sha256": ["ab12"]}
    assert dg.materialize([scores], resources=resources).success

    table = stored(database, "scores")
    assert table.to_dict("records") == [{"day": "tuesday", "f1": 0.995, "model_sha256": "ab12"}]


def test_names_compare_as_duckdb_compares_them_and_categoricals_become_text(tmp_path):
    frames = {
        "monday": pd.DataFrame({"day": ["monday"], "Pixels": [10]}),
        # Same column in another case; a new categorical column; a name with a quote in it.
        "tuesday": pd.DataFrame({"day": ["tuesday"], "pixels": [20], "camera": pd.Categorical(["a"]), 'say "cheese"': [1]}),
        # A value the first categorical never had.
        "wednesday": pd.DataFrame({"day": ["wednesday"], "PIXELS": [30], "camera": pd.Categorical(["b"]), 'say "cheese"': [2]}),
    }

    @dg.asset(partitions_def=DAYS, metadata={"partition_expr": "day"})
    def shots(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return frames[context.partition_key]

    database = tmp_path / "warehouse.duckdb"
    # The schema named in another case than the table was created with.
    for day, schema in zip(DAYS.get_partition_keys(), ["skinseg", "SKINSEG", "skinseg"], strict=True):
        resources = {"io_manager": WarehouseIOManager(database=str(database), schema=schema)}
        assert dg.materialize([shots], partition_key=day, resources=resources).success

    table = stored(database, "shots")
    assert list(table.columns) == ["day", "Pixels", "camera", 'say "cheese"']
    assert table["Pixels"].tolist() == [10, 20, 30]
    assert table["camera"].tolist()[1:] == ["a", "b"]
    assert table['say "cheese"'].tolist()[1:] == [1, 2]


def test_an_empty_partition_reports_its_own_row_count_not_the_tables(tmp_path):
    @dg.asset(partitions_def=DAYS, metadata={"partition_expr": "day"})
    def rejected(context: dg.AssetExecutionContext) -> pd.DataFrame:
        rows = {"monday": ["monday", "monday"], "tuesday": []}[context.partition_key]
        return pd.DataFrame({"day": pd.Series(rows, dtype=object)})

    @dg.asset
    def nothing_yet() -> pd.DataFrame:
        return pd.DataFrame({"day": pd.Series([], dtype=object)})

    database = tmp_path / "warehouse.duckdb"
    resources = {"io_manager": WarehouseIOManager(database=str(database), schema="skinseg")}
    monday = dg.materialize([rejected], partition_key="monday", resources=resources)
    tuesday = dg.materialize([rejected], partition_key="tuesday", resources=resources)
    whole = dg.materialize([nothing_yet], resources=resources)

    def metadata(result, asset):
        return {key: value.value for key, value in result.asset_materializations_for_node(asset)[0].metadata.items()}

    assert metadata(monday, "rejected")["dagster/partition_row_count"] == 2
    assert metadata(tuesday, "rejected")["dagster/partition_row_count"] == 0
    assert "dagster/row_count" not in metadata(tuesday, "rejected")  # the table still holds monday's 2
    assert len(stored(database, "rejected")) == 2
    assert metadata(whole, "nothing_yet")["dagster/row_count"] == 0


def test_an_unpartitioned_asset_in_a_partitioned_run_reports_the_tables_row_count(tmp_path):
    """As train_pixels does in training_job: the run has a partition key, the asset has no partitions."""

    @dg.asset(partitions_def=DAYS, metadata={"partition_expr": "day"})
    def batch(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame({"day": [context.partition_key] * 2})

    @dg.asset(deps=[batch])
    def split() -> pd.DataFrame:
        return pd.DataFrame({"pixels": [1, 2, 3]})

    database = tmp_path / "warehouse.duckdb"
    defs = dg.Definitions(
        assets=[batch, split],
        jobs=[dg.define_asset_job("both")],
        resources={"io_manager": WarehouseIOManager(database=str(database), schema="skinseg")},
    )
    result = defs.resolve_job_def("both").execute_in_process(partition_key="monday")
    metadata = result.asset_materializations_for_node("split")[0].metadata
    assert metadata["dagster/row_count"].value == 3
    assert "dagster/row_count" not in result.asset_materializations_for_node("batch")[0].metadata


def test_a_partition_whose_new_rows_cannot_be_written_keeps_its_stored_rows(tmp_path):
    database = write_each_day(tmp_path, "counts", {day: pd.DataFrame({"day": [day] * 3, "pixels": [1, 2, 3]}) for day in DAYS.get_partition_keys()})

    @dg.asset(name="counts", partitions_def=DAYS, metadata={"partition_expr": "day"})
    def text_where_numbers_are_stored() -> pd.DataFrame:
        return pd.DataFrame({"day": ["monday"], "pixels": ["not a number"]})

    resources = {"io_manager": WarehouseIOManager(database=str(database), schema="skinseg")}
    result = dg.materialize([text_where_numbers_are_stored], partition_key="monday", resources=resources, raise_on_error=False)
    assert not result.success
    assert "not a number" in result.get_step_failure_events()[0].step_failure_data.error.to_string()
    # The delete of monday's rows went with the insert that failed: nothing is lost.
    assert stored(database, "counts")["pixels"].tolist() == [1, 2, 3] * 3


def test_the_write_commits_whichever_type_handler_wrote(tmp_path):
    """The transaction is the client's: a handler that knows nothing of it (the library's own) still stores its rows."""

    class WithTheLibrarysHandler(WarehouseIOManager):
        @staticmethod
        def type_handlers():
            return [DuckDBPandasTypeHandler()]

    @dg.asset(name="counts")
    def counts() -> pd.DataFrame:
        return pd.DataFrame({"day": ["monday"], "pixels": [10]})

    database = tmp_path / "warehouse.duckdb"
    assert dg.materialize([counts], resources={"io_manager": WithTheLibrarysHandler(database=str(database), schema="skinseg")}).success
    assert stored(database, "counts")["pixels"].tolist() == [10]


def work_that_fails(connecting) -> object:
    """Runs a failing block on the connection `connecting` opens; returns that connection, kept
    alive as a notebook's last traceback keeps it."""
    kept = None
    try:
        with connecting as connection:
            kept = connection
            connection.execute("select 1")
            raise RuntimeError("the block fails")
    except RuntimeError:
        pass
    return kept


def test_a_connection_whose_work_fails_is_closed_and_releases_the_file(tmp_path):
    """An open connection holds the DuckDB file's lock: any other process (a run, a notebook)
    could not open the file until it is garbage-collected."""
    database = str(tmp_path / "warehouse.duckdb")
    io_manager_context = SimpleNamespace(resource_config={"database": database, "connection_config": {}})
    for connecting in (
        ReplacingDuckDbClient.connect(io_manager_context, None),
        DuckDBWarehouse(database=database).get_connection(),
    ):
        kept = work_that_fails(connecting)
        with pytest.raises(duckdb.ConnectionException, match="closed"):
            kept.execute("select 1")
        # Another configuration of the same file opens: no connection of this process holds it.
        duckdb.connect(database, read_only=True).close()
