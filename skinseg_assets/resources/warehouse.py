"""The `warehouse` resource: the two histories skinseg appends to, model evaluations and champion decisions.

Assets and ops record and read them only through `Warehouse`'s methods, never with SQL of their
own. Moving the frames to BigQuery (dagster-gcp) therefore means swapping resources, not asset
code: the `io_manager` for `BigQueryPandasIOManager`, and this one for a `Warehouse` whose methods
run on `BigQueryResource`.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from skinseg_assets.resources.champion_store import ChampionManifest
from skinseg_assets.resources.warehouse_io_manager import (
    add_missing_columns,
    closed_even_on_error,
    make_database_folder,
    with_text_columns,
)

METRICS_HISTORY = "model_metrics_history"  # one row per evaluation (pixels.metrics.metrics_row)
CHAMPION_HISTORY = "champion_history"  # one row per decision (promoted, kept) and per rollback
# The champion history's columns, in order, with their DuckDB types.
CHAMPION_HISTORY_COLUMNS = {
    "decided_at": "TIMESTAMP",
    "run_id": "VARCHAR",
    "action": "VARCHAR",
    "champion_version": "INTEGER",
    "model_sha256": "VARCHAR",
    "candidate_f1": "DOUBLE",
    "champion_f1": "DOUBLE",
    "training_rows": "BIGINT",
    "test_rows": "BIGINT",
    "reason": "VARCHAR",
}


class Warehouse(dg.ConfigurableResource):
    """What the assets ask of the warehouse."""

    def table_name(self, table: str) -> str:
        """The table's full name, for metadata (e.g. `skinseg.model_metrics_history`)."""
        raise NotImplementedError

    def append_metrics(self, row: pd.DataFrame, replacing_run_ids: Sequence[str] = ()) -> int:
        """Append an evaluation to the metrics history; returns how many evaluations it now holds.

        Rows of `replacing_run_ids` (failed earlier attempts of this run) are deleted in the same
        transaction, so an attempt that failed after writing its row is not counted twice. A
        column the row has and the table lacks is added (earlier rows read NULL).
        """
        raise NotImplementedError

    def record_champion_decision(
        self,
        *,
        run_id: str,
        action: str,
        champion: ChampionManifest,
        reason: str,
        candidate_f1: float | None = None,
        champion_f1: float | None = None,
        test_rows: int | None = None,
    ) -> int:
        """Record a decision; `champion` is the version serving after it. Returns the history's length."""
        row = {
            "decided_at": datetime.now(timezone.utc).replace(tzinfo=None),
            "run_id": run_id,
            "action": action,
            "champion_version": champion.version,
            "model_sha256": champion.sha256,
            "candidate_f1": candidate_f1,
            "champion_f1": champion_f1,
            "training_rows": champion.training_data.get("rows"),
            "test_rows": test_rows,
            "reason": reason,
        }
        return self.append_champion_decision(row)

    def append_champion_decision(self, row: dict) -> int:
        """Append one row (the CHAMPION_HISTORY_COLUMNS) to the champion history; returns its length."""
        raise NotImplementedError

    def promoted_sha256(self, version: int) -> str | None:
        """The model sha256 the history recorded when `version` was promoted (None if it has no record)."""
        raise NotImplementedError

    def champion_history(self, limit: int = 10) -> pd.DataFrame:
        """The latest decisions, newest first: decided_at, action, champion_version, candidate_f1, champion_f1, reason."""
        raise NotImplementedError


class DuckDBWarehouse(Warehouse):
    """The histories as tables in the DuckDB file that holds the frames."""

    database: str = Field(description="Path to the DuckDB file")
    schema_name: str = Field(default="skinseg", description="Schema of the history tables")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        make_database_folder(self.database)

    @contextmanager
    def get_connection(self) -> Iterator:
        """A connection to the DuckDB file (dagster-duckdb's: it waits while another process holds the
        lock), closed even when the block fails, so that no failure leaves the lock held."""
        with closed_even_on_error(DuckDBResource(database=self.database).get_connection()) as connection:
            yield connection

    def table_name(self, table: str) -> str:
        return f"{self.schema_name}.{table}"

    def append_metrics(self, row: pd.DataFrame, replacing_run_ids: Sequence[str] = ()) -> int:
        table = self.table_name(METRICS_HISTORY)
        with self.get_connection() as connection:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema_name}")
            row = with_text_columns(row)
            connection.register("new_metrics", row)
            connection.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM new_metrics LIMIT 0")
            add_missing_columns(connection, table, row)
            connection.execute("BEGIN TRANSACTION")
            connection.execute(f"DELETE FROM {table} WHERE list_contains(?, run_id)", [list(replacing_run_ids)])
            connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM new_metrics")
            connection.execute("COMMIT")
            connection.unregister("new_metrics")
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def _ensure_champion_history(self, connection) -> str:
        table = self.table_name(CHAMPION_HISTORY)
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema_name}")
        columns = ", ".join(f"{name} {type_}" for name, type_ in CHAMPION_HISTORY_COLUMNS.items())
        connection.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        return table

    def append_champion_decision(self, row: dict) -> int:
        with self.get_connection() as connection:
            table = self._ensure_champion_history(connection)
            connection.execute(
                f"INSERT INTO {table} ({', '.join(CHAMPION_HISTORY_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in CHAMPION_HISTORY_COLUMNS)})",
                [row[name] for name in CHAMPION_HISTORY_COLUMNS],
            )
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def promoted_sha256(self, version: int) -> str | None:
        with self.get_connection() as connection:
            table = self._ensure_champion_history(connection)
            row = connection.execute(
                f"SELECT model_sha256 FROM {table} WHERE champion_version = ? AND action = 'promoted' "
                "ORDER BY decided_at DESC LIMIT 1",
                [version],
            ).fetchone()
        return row[0] if row else None

    def champion_history(self, limit: int = 10) -> pd.DataFrame:
        with self.get_connection() as connection:
            table = self._ensure_champion_history(connection)
            return connection.execute(
                f"SELECT decided_at, action, champion_version, candidate_f1, champion_f1, reason "
                f"FROM {table} ORDER BY decided_at DESC LIMIT ?",
                [limit],
            ).df()
