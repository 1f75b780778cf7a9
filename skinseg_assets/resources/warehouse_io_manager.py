"""DuckDB storage for frames: dagster-duckdb-pandas, with stable column types.

Two gaps in the library's pandas handler are closed here; everything else is its own code:
- It skips writing an empty DataFrame, so a batch that rejects no rows would leave
  `rejected_skin_pixels` with no table and every reader of it failing. An empty frame becomes
  an empty table with the frame's columns.
- DuckDB types a column of Python objects from its values: an all-None text column (no extra
  fields in this batch) becomes type NULL, and the next batch's text cannot be inserted into
  it. Object columns are written as text (VARCHAR) always.
"""

from collections.abc import Sequence

import dagster as dg
import pandas as pd
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler


def with_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its object columns as pandas' string dtype, which DuckDB stores as VARCHAR."""
    object_columns = frame.select_dtypes(include="object").columns
    return frame.astype({column: "string" for column in object_columns}) if len(object_columns) else frame


class TypedDuckDBPandasTypeHandler(DuckDBPandasTypeHandler):
    def handle_output(self, context: dg.OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection):
        obj = with_text_columns(obj)
        if not obj.empty:
            return super().handle_output(context, table_slice, obj, connection)
        connection.register("empty_frame", obj)
        connection.execute(
            f"create table if not exists {table_slice.schema}.{table_slice.table} as select * from empty_frame"
        )
        connection.unregister("empty_frame")
        context.add_output_metadata({"dagster/row_count": dg.MetadataValue.int(0)})


class WarehouseIOManager(DuckDBPandasIOManager):
    """Pandas frames as DuckDB tables (one table per asset, in the configured schema)."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [TypedDuckDBPandasTypeHandler()]
