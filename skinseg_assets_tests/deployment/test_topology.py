"""The deployed topology, end to end: Postgres instance, GCS emulator, gRPC code server, daemon, webserver.

Runs are launched the way an operator's script would (GraphQL through the webserver), queued,
dequeued by the daemon and executed by the code server; the tests then look where the data
must have gone: Postgres for runs and events, the bucket for the model.
"""

import hashlib
import subprocess
import sys
import time

import pytest
import yaml
from dagster import DagsterEventType, deserialize_value

from skinseg_assets_tests.deployment.conftest import GCP_PROJECT, RUN_SECONDS
from skinseg_assets_tests.helpers import gcs_client, land_uci_sample
from skinseg_assets_tests.test_definitions import CORE_ASSETS
from skinseg_assets_tests.deployment.topology import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    REPO_ROOT,
    TRAINING_JOB,
    VENV_BIN,
    Topology,
    connect,
    daemons_healthy_since,
    launch_training_run,
    materialization_metadata,
    recent_runs,
    wait_for_run,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gql")

MODEL_OBJECT = "skin_classifier.skops"
# What training_job materializes at least; the deployed code says the rest (`job_assets`).
CORE_TRAINING_ASSETS = CORE_ASSETS
ASSET_JOBS_QUERY = "query AssetJobs { assetNodes { assetKey { path } jobNames } }"


def job_assets(topology: Topology, job_name: str) -> set[str]:
    """The asset keys the webserver lists for a job of the deployed code location."""
    nodes = topology.graphql(ASSET_JOBS_QUERY)["assetNodes"]
    return {"/".join(node["assetKey"]["path"]) for node in nodes if job_name in node["jobNames"]}


def topology_gcs_client(topology: Topology):
    return gcs_client(topology.gcs_url, project=GCP_PROJECT)


def run_events(topology: Topology, run_id: str) -> list[tuple[str, str]]:
    """(dagster_event_type, serialized event) of every event of a run, from Postgres."""
    with connect(topology) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT dagster_event_type, event FROM event_logs WHERE run_id = %s ORDER BY id", (run_id,))
        return [(event_type or "", event) for event_type, event in cursor.fetchall()]


def test_training_run_lands_in_postgres_and_the_model_in_the_bucket(topology: Topology, first_training_run: str):
    with connect(topology) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pipeline_name, status FROM runs WHERE run_id = %s", (first_training_run,))
        assert cursor.fetchone() == (TRAINING_JOB, "SUCCESS")

    events = run_events(topology, first_training_run)
    event_types = [event_type for event_type, _ in events]
    # Queued by the webserver, launched by the daemon, succeeded in the code server's run worker.
    for expected in (DagsterEventType.RUN_ENQUEUED, DagsterEventType.RUN_STARTING, DagsterEventType.RUN_SUCCESS):
        assert expected.value in event_types, f"no {expected.name} event in Postgres: {sorted(set(event_types))}"
    materialized = {
        deserialize_value(serialized).asset_materialization.asset_key.to_user_string()
        for event_type, serialized in events
        if event_type == DagsterEventType.ASSET_MATERIALIZATION.value
    }
    expected = job_assets(topology, TRAINING_JOB)
    assert CORE_TRAINING_ASSETS <= expected
    assert materialized == expected
    assert event_types.count(DagsterEventType.ASSET_CHECK_EVALUATION.value) >= 3

    # The model is in the bucket, under the prefix, where the run said it wrote it...
    model_uri = f"gs://{topology.bucket}/{topology.gcs_prefix}/{MODEL_OBJECT}"
    assert materialization_metadata(topology, "skin_classifier", first_training_run)["File"] == model_uri
    blob = topology_gcs_client(topology).bucket(topology.bucket).get_blob(f"{topology.gcs_prefix}/{MODEL_OBJECT}")
    assert blob is not None, f"no {model_uri}"
    # ...with the bytes Dagster recorded when it last wrote it (other tests' runs and the sensors' train too).
    assert hashlib.sha256(blob.download_as_bytes()).hexdigest() == materialization_metadata(topology, "skin_classifier")["sha256"]
    # ...and not in a local blob folder; the frames are in the DuckDB file in SKINSEG_DATA_DIR.
    assert not (topology.data_dir / "blobs").exists()
    assert (topology.data_dir / "warehouse.duckdb").is_file()


def compose_healthcheck(topology: Topology, service: str) -> list[str]:
    """A service's healthcheck command from docker-compose.yml, pointed at this topology's ports."""
    test = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"][service]["healthcheck"]["test"]
    assert test[0] == "CMD", f"{service}'s healthcheck is not an exec-form command: {test}"
    ports = {"4000": str(topology.code_server_port), "3000": str(topology.webserver_port)}
    args = [ports.get(arg, arg).replace(":3000/", f":{topology.webserver_port}/") for arg in test[1:]]
    executable = sys.executable if args[0] == "python" else str(VENV_BIN / args[0])
    return [executable, *args[1:]]


@pytest.mark.parametrize("service", ["user-code", "webserver", "daemon"])
def test_compose_healthchecks_pass_on_the_running_topology(topology: Topology, first_training_run: str, service: str):
    command = compose_healthcheck(topology, service)
    completed = subprocess.run(command, env=topology.env, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, f"{command} failed:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}"


def terminate_connections(topology: Topology) -> int:
    """Drop every connection to the topology's database except our own; returns how many."""
    import psycopg2

    admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (topology.database,),
            )
            return cursor.fetchone()[0]
    finally:
        admin.close()


# One Postgres-backed read per storage of the webserver: runs, event log, schedules (ticks).
STORAGE_READS = {
    "run storage": ("query Runs { runsOrError(limit: 1) { __typename ... on PythonError { message } } }", "runsOrError", "Runs"),
    "event log storage": (
        "query Logs($runId: ID!) { logsForRun(runId: $runId, limit: 1) { __typename ... on PythonError { message } } }",
        "logsForRun",
        "EventConnection",
    ),
    "schedule storage": ("query Ticks { autoMaterializeTicks(limit: 1) { id } }", "autoMaterializeTicks", None),
}


def webserver_reads(topology: Topology, storage: str, run_id: str) -> bool:
    """True when the webserver answers a query on one of its storages; an error means "not yet"."""
    query, field, ok = STORAGE_READS[storage]
    result = topology.graphql(query, {"runId": run_id} if "$runId" in query else None)[field]
    if ok is not None and result["__typename"] != ok:
        raise RuntimeError(result.get("message", result["__typename"]))
    return True


def test_daemon_and_webserver_recover_when_postgres_drops_their_connections(
    topology: Topology, graphql_client, first_training_run: str
):
    # Drop every connection a few times over some seconds, so that the daemon's short-lived
    # connections are caught too, not only the webserver's pooled ones.
    dropped_at = time.time()
    dropped = 0
    for _ in range(5):
        dropped += terminate_connections(topology)
        time.sleep(1)
    assert dropped > 0, "no Dagster process held a Postgres connection: nothing was tested"
    topology.assert_running()

    # The webserver keeps one pooled connection per storage and does not test it before use:
    # the first query on a dropped one fails, SQLAlchemy discards the pool, the next one works.
    # So it recovers by itself; these reads are what a user's page reloads would do.
    for storage in STORAGE_READS:
        topology.wait_until(
            f"the webserver to read its {storage} again",
            lambda: webserver_reads(topology, storage, first_training_run),  # noqa: B023 - called at once
            30,
        )
    # A new run goes all the way through: webserver -> queue in Postgres -> daemon -> code server.
    run_id = launch_training_run(topology, graphql_client)
    status = wait_for_run(topology, graphql_client, run_id, RUN_SECONDS)
    assert status == "SUCCESS", f"run {run_id} after the drop ended {status}\n{recent_runs(topology)}\n{topology.logs(60)}"
    # Every daemon has written a heartbeat since its connections were dropped.
    topology.wait_until(
        "every daemon to heartbeat after the drop", lambda: daemons_healthy_since(topology, dropped_at), 45
    )
    topology.assert_running()

    with connect(topology) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_id FROM runs WHERE pipeline_name = %s AND status = 'SUCCESS'", (TRAINING_JOB,))
        assert {first_training_run, run_id} <= {row[0] for row in cursor.fetchall()}


def latest_training_rows(topology: Topology) -> int | None:
    """'Training rows' of the newest model_metrics materialization in Postgres."""
    metadata = materialization_metadata(topology, "model_metrics")
    return None if metadata is None else metadata["Training rows"]


def test_file_dropped_in_the_gs_landing_zone_is_trained_on(topology: Topology, first_training_run: str):
    """A pixel file uploaded to gs://<bucket>/landing/: the sensor ingests it, automation retrains."""
    before = latest_training_rows(topology)
    assert before is not None
    landing = topology.env["SKINSEG_LANDING_URI"]  # gs://<bucket>/landing
    new_rows = land_uci_sample(landing, "day-1.txt", every=9, client=topology_gcs_client(topology))

    deadline = time.monotonic() + 2 * RUN_SECONDS
    while time.monotonic() < deadline:
        after = latest_training_rows(topology)
        if after is not None and after > before:
            break
        time.sleep(3)
    else:
        raise AssertionError(
            f"model_metrics was not re-materialized with the landed rows (still {before} training rows)\n"
            f"runs: {recent_runs(topology)}\n{topology.logs()}"
        )
    # The new colours split 80/20, so the training side grows by most of the landed rows.
    assert 0.6 * new_rows < after - before <= new_rows
    with connect(topology) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'pixel_batches'")
        assert "day-1.txt" in {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT status FROM runs WHERE pipeline_name = 'ingest_batch_job'")
        assert "FAILURE" not in {row[0] for row in cursor.fetchall()}
