"""DuckDB storage for frames: dagster-duckdb-pandas, with stable column types.

The IO manager and the `warehouse` resource make the database file's folder when a run or sensor
first uses them (DuckDB creates the file but not its folder), so loading the code location writes
nothing.

Six things differ from the library's IO manager; everything else is its own code:
- A table's rows are replaced in one transaction: the library deletes the partition's (or
  table's) rows and then inserts the new ones as two statements, so a failed insert would lose
  the stored rows. A connection is also closed when its work fails: the library closes it only
  on success, and until it is garbage-collected (a notebook keeps the last traceback) it holds
  the DuckDB file's lock against every other process.
- It skips writing an empty DataFrame, so a batch that rejects no rows would leave
  `rejected_skin_pixels` with no table and every reader of it failing. An empty frame becomes
  an empty table with the frame's columns.
- DuckDB types a column of Python objects from its values: an all-None text column (no extra
  fields in this batch) becomes type NULL, and the next batch's text cannot be inserted into
  it. Such columns are written as text (VARCHAR).
- Tables are read through Arrow, which turns text columns into Python strings many times
  faster than `fetchdf()` and lets repeated values (the batch key) share one object.
- The library inserts a frame's columns by position into the table an earlier run created. When
  an asset gains a column (a new release), that insert fails. The table gains the column instead
  (earlier rows read NULL), and the frame is written by column name.
- Row counts: an empty frame is written here, not by the library, so its count is added here;
  and the library reports a partition's count (not the table's) for an unpartitioned asset
  whenever the run has a partition key, which is corrected.
"""

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler


def holds_a_value(column: pd.Series) -> bool:
    """Whether any row of the column is not null; a text first row answers without a scan."""
    return (len(column) > 0 and isinstance(column.iat[0], str)) or bool(column.notna().any())


def with_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its value-less object columns as pandas' string dtype, which DuckDB stores
    as VARCHAR (columns holding strings are typed VARCHAR by DuckDB already; not copied).
    Cheap on a frame of 245,057 rows: a column whose first row is text needs no null scan, and
    no copy of the text columns is made (`select_dtypes` would)."""
    untyped = [column for column, dtype in frame.dtypes.items() if dtype == object and not holds_a_value(frame[column])]
    return frame.astype(dict.fromkeys(untyped, "string")) if untyped else frame


def table_columns(connection, table: str) -> list[str]:
    """The columns of `schema.table` in this database, in their order; empty if there is no such table."""
    schema, name = table.split(".")
    return [
        row[0]
        for row in connection.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and lower(schema_name) = lower(?) and lower(table_name) = lower(?) order by column_index",
            [schema, name],
        ).fetchall()
    ]


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def add_missing_columns(connection, table: str, frame: pd.DataFrame) -> list[str]:
    """Give `table` (if it exists) every column of `frame` it lacks; returns its columns.

    Names compare as DuckDB compares them (case-insensitively). A new column gets the type DuckDB
    gives the frame's column, except that a pandas categorical (an ENUM of this frame's values)
    becomes text, so later values fit.
    """
    columns = table_columns(connection, table)
    known = {column.lower() for column in columns}
    missing = [str(name) for name in frame.columns if str(name).lower() not in known]
    if not columns or not missing:
        return columns
    connection.register("frame_with_new_columns", frame)
    try:
        types = dict(connection.execute("select column_name, column_type from (describe frame_with_new_columns)").fetchall())
    finally:
        connection.unregister("frame_with_new_columns")
    for name in missing:
        column_type = "VARCHAR" if types[name].startswith("ENUM") else types[name]
        connection.execute(f"alter table {table} add column {quoted(name)} {column_type}")
        columns.append(name)
    return columns


def in_table_order(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The frame's columns in the table's order, NULL for a table column the frame no longer has."""
    if list(frame.columns) == columns:
        return frame
    by_lower_name = {str(name).lower(): name for name in frame.columns}
    aligned = {
        column: frame[by_lower_name[column.lower()]] if column.lower() in by_lower_name else pd.Series(None, index=frame.index, dtype=object)
        for column in columns
    }
    return pd.DataFrame(aligned, index=frame.index)


@contextmanager
def closed_even_on_error(connecting: AbstractContextManager) -> Iterator:
    """The connection `connecting` opens (dagster-duckdb's), closed however the block ends: the
    library closes it only when the block succeeds."""
    with connecting as connection:
        try:
            yield connection
        finally:
            connection.close()


class ReplacingDuckDbClient(DuckDbClient):
    """dagster-duckdb's client, with each write one transaction and every connection closed.

    A write's connection (the IO manager's handle_output: delete the slice, then the type handler
    inserts) runs in a transaction that commits when its block ends well; one that fails is
    rolled back when the connection closes.
    """

    @staticmethod
    @contextmanager
    def connect(context, table_slice: TableSlice) -> Iterator:
        writing = isinstance(context, dg.OutputContext)
        with closed_even_on_error(DuckDbClient.connect(context, table_slice)) as connection:
            if writing:
                connection.begin()
            yield connection
            if writing:
                connection.commit()

    @staticmethod
    def delete_table_slice(context: dg.OutputContext, table_slice: TableSlice, connection) -> None:
        # Only an existing table: a failed statement would abort the transaction (the library
        # catches the error a missing table raises).
        if table_columns(connection, f"{table_slice.schema}.{table_slice.table}"):
            DuckDbClient.delete_table_slice(context, table_slice, connection)


class TypedDuckDBPandasTypeHandler(DuckDBPandasTypeHandler):
    def handle_output(self, context: dg.OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection):
        obj = with_text_columns(obj)
        columns = add_missing_columns(connection, f"{table_slice.schema}.{table_slice.table}", obj)
        if columns:
            # The library inserts by position: line the frame up with the table.
            obj = in_table_order(obj, columns)
        if obj.empty:
            connection.register("empty_frame", obj)
            connection.execute(
                f"create table if not exists {table_slice.schema}.{table_slice.table} as select * from empty_frame"
            )
            connection.unregister("empty_frame")
        else:
            super().handle_output(context, table_slice, obj, connection)
        # Row counts: an empty frame's (written above, not by the library), and the table's for an
        # unpartitioned asset in a partitioned run (train_pixels in training_job: the library
        # reports a partition's count whenever the run has a partition key).
        if context.has_asset_partitions:
            if obj.empty:
                context.add_output_metadata({"dagster/partition_row_count": dg.MetadataValue.int(0)})
        elif obj.empty or context.has_partition_key:
            context.add_output_metadata({"dagster/row_count": dg.MetadataValue.int(len(obj))})

    def load_input(self, context: dg.InputContext, table_slice: TableSlice, connection) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        return connection.sql(DuckDbClient.get_select_statement(table_slice)).to_arrow_table().to_pandas()


def make_database_folder(database: str) -> None:
    """The folder of a DuckDB file path (an in-memory or remote database has none to make)."""
    if database and not database.startswith((":memory:", "md:", "motherduck:")):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


class WarehouseIOManager(DuckDBPandasIOManager):
    """Pandas frames as DuckDB tables (one table per asset, in the configured schema)."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        make_database_folder(self.database)

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [TypedDuckDBPandasTypeHandler()]

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(
            db_client=ReplacingDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="DuckDBIOManager",
        )
