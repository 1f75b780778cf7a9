"""DuckDB storage for frames: dagster-duckdb-pandas, plus empty frames stored as empty tables.

The library skips writing an empty DataFrame, so a run that rejects no rows would leave
`rejected_skin_pixels` with no table and every reader of it failing. Here an empty frame
becomes an empty table with the frame's columns; everything else is the library's own code.
"""

from collections.abc import Sequence

import dagster as dg
import pandas as pd
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler


class EmptyAwareDuckDBPandasTypeHandler(DuckDBPandasTypeHandler):
    def handle_output(self, context: dg.OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection):
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
        return [EmptyAwareDuckDBPandasTypeHandler()]
