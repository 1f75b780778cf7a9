"""The deployed topology as local processes: what docker-compose.yml runs, minus the containers.

Postgres (a fresh database on the local server), fake-gcs-server (the PyPI wheel), the code
location as a gRPC server, dagster-daemon and dagster-webserver, all configured by the project's
own dagster.yaml and workspace.yaml. Every wait is bounded and fails with the tails of the
processes' logs.
"""

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import requests

from skinseg_assets_tests.processes import stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LOCATION_NAME = "skinseg"  # workspace.yaml's location_name
REPOSITORY_NAME = "__repository__"  # what Dagster calls the repository of a Definitions object
TRAINING_JOB = "training_job"
TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}

# Settings of the local Postgres server (trust auth), overridable for other machines.
PG_HOST = os.environ.get("SKINSEG_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("SKINSEG_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("SKINSEG_TEST_PG_USER", "postgres")
PG_START_HINT = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, without terminal colours."""
    if not path.is_file():
        return "(no log)"
    text = ANSI_ESCAPE.sub("", path.read_text(errors="replace")).splitlines()
    return "\n".join(text[-lines:]) or "(empty log)"


@dataclass
class ManagedProcess:
    """A process in its own session (process group), with its output in a log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    @classmethod
    def start(cls, name: str, args: list[str], env: dict[str, str], cwd: Path, log_dir: Path) -> "ManagedProcess":
        log_path = log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends its children too
            )
        return cls(name=name, popen=popen, log_path=log_path)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def stop(self, grace_seconds: float = 10) -> None:
        """SIGTERM the process group, then SIGKILL what is left of it (run workers, API servers)."""
        stop_process_group(self.popen, grace_seconds)


@dataclass
class Topology:
    """The running processes and where to reach them."""

    webserver_port: int
    code_server_port: int
    database: str
    bucket: str
    gcs_prefix: str
    gcs_url: str
    dagster_home: Path
    data_dir: Path
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def webserver_url(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    def logs(self, lines: int = 30) -> str:
        """The tails of every process's log, for failure messages."""
        sections = [
            f"--- {process.name} ({'running' if process.alive() else f'exited {process.popen.returncode}'}), "
            f"last {lines} lines of {process.log_path} ---\n{process.tail(lines)}"
            for process in self.processes.values()
        ]
        gcs_log = self.log_dir / "fake-gcs-server.log"
        sections.append(f"--- fake-gcs-server, last 10 lines ---\n{tail(gcs_log, 10)}")
        return "\n".join(sections)

    def assert_running(self, *names: str) -> None:
        for name in names or tuple(self.processes):
            process = self.processes[name]
            assert process.alive(), f"{name} exited with {process.popen.returncode}\n{self.logs()}"

    def wait_until(self, what: str, check: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
        """Poll `check` until it returns a truthy value; fail after `timeout` with the logs.

        Exceptions from `check` count as "not yet" (a server starting, a connection dropped);
        the last one is quoted in the failure message.
        """
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            self.assert_running()
            try:
                value = check()
                if value:
                    return value
            except Exception as error:  # noqa: BLE001 - reported below if it never passes
                last_error = error
            if time.monotonic() >= deadline:
                detail = f"\nlast error: {last_error!r}" if last_error else ""
                raise AssertionError(f"{what}: not within {timeout:.0f}s{detail}\n{self.logs()}")
            time.sleep(interval)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """A raw GraphQL query against the webserver (for what DagsterGraphQLClient does not cover)."""
        response = requests.post(
            f"{self.webserver_url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        payload = response.json()
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def stop(self) -> None:
        # The servers that launch work first, the code server (and its run workers) last.
        for name in ("webserver", "daemon", "code-server"):
            if name in self.processes:
                self.processes[name].stop()


LOCATION_STATUS_QUERY = """
query LocationStatus {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""

DAEMON_HEALTH_QUERY = """
query DaemonHealth {
  instance {
    daemonHealth {
      allDaemonStatuses { daemonType required healthy lastHeartbeatTime }
    }
  }
}
"""


def location_loaded(topology: Topology) -> bool:
    """True once the webserver has loaded the skinseg location from the gRPC server without error."""
    data = topology.graphql(LOCATION_STATUS_QUERY)["workspaceOrError"]
    for entry in data.get("locationEntries", []):
        if entry["name"] == LOCATION_NAME:
            loaded = entry["locationOrLoadError"] or {}
            if loaded.get("__typename") == "PythonError":
                raise RuntimeError(f"code location failed to load: {loaded['message']}")
            return entry["loadStatus"] == "LOADED" and loaded.get("__typename") == "RepositoryLocation"
    return False


def daemon_statuses(topology: Topology) -> list[dict]:
    return topology.graphql(DAEMON_HEALTH_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]


def daemons_healthy_since(topology: Topology, since: float) -> bool:
    """True when every required daemon is healthy and has a heartbeat newer than `since` (epoch s)."""
    required = [status for status in daemon_statuses(topology) if status["required"]]
    return bool(required) and all(
        status["healthy"] and (status["lastHeartbeatTime"] or 0) > since for status in required
    )


ADD_PARTITION_MUTATION = """
mutation AddBatch($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename ... on PythonError { message } ... on UnauthorizedError { message }
  }
}
"""
RECENT_RUNS_QUERY = """
query RecentRuns { runsOrError(limit: 15) { ... on Runs { results { runId jobName status tags { key value } } } } }
"""


def launch_training_run(topology: Topology, client, *, partition_key: str | None = None, run_config: dict | None = None) -> str:
    """Launch `training_job` through the webserver's GraphQL API; returns the run id.

    The one place the deployment tests launch runs. training_job runs one `pixel_batches`
    partition (default: the bundled UCI batch, as the job's own default tag says); the partition
    is registered first, as an operator would in the UI, because the landing-zone sensor may not
    have had its first tick yet. Registering an existing partition is a no-op.
    """
    from skinseg_assets.partitions import pixel_batches
    from skinseg_assets.pixels.batches import BUNDLED_BATCH

    key = partition_key or BUNDLED_BATCH
    selector = {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME}
    added = topology.graphql(ADD_PARTITION_MUTATION, {"selector": selector, "name": pixel_batches.name, "key": key})
    outcome = added["addDynamicPartition"]
    assert outcome["__typename"] in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"), outcome
    return client.submit_job_execution(
        TRAINING_JOB,
        repository_location_name=LOCATION_NAME,
        repository_name=REPOSITORY_NAME,
        run_config=run_config or {},
        tags={"dagster/partition": key},
    )


def recent_runs(topology: Topology) -> str:
    """The latest runs, one line each (the queue is shared with the sensors' runs), for failure messages."""
    try:
        runs = topology.graphql(RECENT_RUNS_QUERY)["runsOrError"]["results"]
    except Exception as error:  # noqa: BLE001 - a diagnostic must not hide the real failure
        return f"(runs unavailable: {error!r})"
    lines = []
    for run in runs:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        partition = tags.get("dagster/partition", "-")
        launched_by = tags.get("dagster/sensor_name", "graphql")
        lines.append(f"{run['runId'][:8]} {run['jobName']:<22} {run['status']:<9} partition={partition} by={launched_by}")
    return "\n".join(lines)


def wait_for_run(topology: Topology, client, run_id: str, timeout: float) -> str:
    """Wait until the run ends; returns its final status (fails with the queue and the logs if it never ends)."""

    def status() -> str | None:
        value = client.get_run_status(run_id).value
        return value if value in TERMINAL_RUN_STATUSES else None

    try:
        return topology.wait_until(f"run {run_id} of {TRAINING_JOB} to finish", status, timeout, interval=1.0)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- recent runs ---\n{recent_runs(topology)}") from None


def connect(topology: Topology):
    """A connection to the topology's instance database (runs, events) on the local Postgres."""
    import psycopg2

    connection = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=topology.database, connect_timeout=5)
    connection.autocommit = True
    return connection


def materialization_metadata(topology: Topology, asset: str, run_id: str | None = None) -> dict | None:
    """The metadata values of the newest materialization of `asset` in Postgres: the run `run_id`'s
    (which must have one), or any run's (None if there is none yet)."""
    from dagster import DagsterEventType, deserialize_value

    query = "SELECT event FROM event_logs WHERE dagster_event_type = %s AND asset_key = %s"
    parameters = [DagsterEventType.ASSET_MATERIALIZATION.value, f'["{asset}"]']
    if run_id is not None:
        query += " AND run_id = %s"
        parameters.append(run_id)
    with connect(topology) as connection, connection.cursor() as cursor:
        cursor.execute(f"{query} ORDER BY id DESC LIMIT 1", parameters)
        row = cursor.fetchone()
    if row is None:
        assert run_id is None, f"run {run_id} recorded no materialization of {asset}"
        return None
    return {key: value.value for key, value in deserialize_value(row[0]).asset_materialization.metadata.items()}
