"""Fixtures that start the deployed topology once for the deployment tests (package scope)."""

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from skinseg_assets_tests.deployment.topology import (
    LOCATION_NAME,
    PG_HOST,
    PG_PORT,
    PG_START_HINT,
    PG_USER,
    REPO_ROOT,
    VENV_BIN,
    ManagedProcess,
    Topology,
    daemons_healthy_since,
    free_port,
    launch_training_run,
    location_loaded,
    port_open,
    recent_runs,
    wait_for_run,
)
from skinseg_assets_tests.helpers import gcs_client, running_fake_gcs_server

GCP_PROJECT = "skinseg-topology"
GCS_PREFIX = "skinseg-topology"
# Bounded waits, sized for a 2-core machine shared with other work.
CODE_SERVER_START_SECONDS = 90
WEBSERVER_START_SECONDS = 90
RUN_SECONDS = 240  # a run takes ~25 s; the sensors' runs share the one-run-at-a-time queue


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine; fail in CI (CI=true), where the test must really run."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="package")
def postgres_database() -> Iterator[str]:
    """A uniquely named, empty database on the local Postgres server; dropped at the end."""
    import psycopg2  # the test extra installs it

    try:
        admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
    except psycopg2.OperationalError as error:
        skip_or_fail(f"no Postgres at {PG_HOST}:{PG_PORT} as {PG_USER} ({error}); start it: {PG_START_HINT}")
    admin.autocommit = True
    name = f"skinseg_topology_{uuid.uuid4().hex[:12]}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.fixture(scope="package")
def topology_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("topology")


@pytest.fixture(scope="package")
def gcs_emulator(topology_dir: Path) -> Iterator[tuple[str, str]]:
    """fake-gcs-server from the PyPI wheel, with one bucket; yields (url, bucket)."""
    log_dir = topology_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    with running_fake_gcs_server(log_dir / "fake-gcs-server.log") as url:
        bucket = f"skinseg-topology-{uuid.uuid4().hex[:8]}"
        gcs_client(url, project=GCP_PROJECT).create_bucket(bucket)
        yield url, bucket


def topology_environment(database: str, gcs_url: str, bucket: str, dagster_home: Path, data_dir: Path, code_server_port: int) -> dict[str, str]:
    """The environment every process of the topology gets: what docker-compose.yml sets, pointed here."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DAGSTER_", "SKINSEG_", "GOOGLE_")) and key != "STORAGE_EMULATOR_HOST"
    }
    return {
        **inherited,
        "PYTHONUNBUFFERED": "1",
        "DAGSTER_HOME": str(dagster_home),
        # dagster.yaml
        "DAGSTER_PG_HOST": PG_HOST,
        "DAGSTER_PG_PORT": str(PG_PORT),
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": "",  # trust auth on the local test server
        "DAGSTER_PG_DB": database,
        # workspace.yaml
        "SKINSEG_CODE_SERVER_HOST": "127.0.0.1",
        "SKINSEG_CODE_SERVER_PORT": str(code_server_port),
        # skinseg's own settings, as compose sets them
        "SKINSEG_DEPLOYMENT": "gcs",
        "SKINSEG_DATA_DIR": str(data_dir),
        "SKINSEG_GCS_BUCKET": bucket,
        "SKINSEG_GCS_PREFIX": GCS_PREFIX,
        "SKINSEG_GCP_PROJECT": GCP_PROJECT,
        "SKINSEG_LANDING_URI": f"gs://{bucket}/landing",
        "STORAGE_EMULATOR_HOST": gcs_url,
    }


@pytest.fixture(scope="package")
def topology(postgres_database: str, gcs_emulator: tuple[str, str], topology_dir: Path) -> Iterator[Topology]:
    """Code server, daemon and webserver on the project's dagster.yaml and workspace.yaml."""
    gcs_url, bucket = gcs_emulator
    dagster_home = topology_dir / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    data_dir = topology_dir / "skinseg-data"
    log_dir = topology_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    code_server_port, webserver_port = free_port(), free_port()
    env = topology_environment(postgres_database, gcs_url, bucket, dagster_home, data_dir, code_server_port)
    running = Topology(
        webserver_port=webserver_port,
        code_server_port=code_server_port,
        database=postgres_database,
        bucket=bucket,
        gcs_prefix=GCS_PREFIX,
        gcs_url=gcs_url,
        dagster_home=dagster_home,
        data_dir=data_dir,
        env=env,
        log_dir=log_dir,
    )
    workspace = str(REPO_ROOT / "workspace.yaml")
    # The processes run in an empty folder: nothing may come from the checkout's ./dagster.yaml or ./.env.
    cwd = topology_dir
    try:
        # The code location: Dockerfile's CMD, plus -d so that this checkout is what gets loaded.
        running.processes["code-server"] = ManagedProcess.start(
            "code-server",
            [str(VENV_BIN / "dagster"), "api", "grpc", "--host", "127.0.0.1", "--port", str(code_server_port),
             "--module-name", "skinseg_assets", "--working-directory", str(REPO_ROOT),
             "--location-name", LOCATION_NAME, "--use-python-environment-entry-point"],
            env, cwd, log_dir,
        )
        # `dagster api grpc` loads the definitions before it listens, so an open port means loaded.
        running.wait_until(
            "the code server to listen", lambda: port_open(code_server_port), CODE_SERVER_START_SECONDS, interval=0.5
        )
        started = time.time()
        running.processes["daemon"] = ManagedProcess.start(
            "daemon", [str(VENV_BIN / "dagster-daemon"), "run", "--workspace", workspace], env, cwd, log_dir
        )
        running.processes["webserver"] = ManagedProcess.start(
            "webserver",
            [str(VENV_BIN / "dagster-webserver"), "--host", "127.0.0.1", "--port", str(webserver_port),
             "--workspace", workspace],
            env, cwd, log_dir,
        )
        running.wait_until("the webserver to load the skinseg location", lambda: location_loaded(running),
                           WEBSERVER_START_SECONDS)
        running.wait_until("every required daemon to report healthy", lambda: daemons_healthy_since(running, started),
                           WEBSERVER_START_SECONDS)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
def graphql_client(topology: Topology):
    from dagster_graphql import DagsterGraphQLClient

    return DagsterGraphQLClient("127.0.0.1", port_number=topology.webserver_port, timeout=60)


@pytest.fixture(scope="package")
def first_training_run(topology: Topology, graphql_client) -> str:
    """The id of a training_job run launched through GraphQL that succeeded."""
    run_id = launch_training_run(topology, graphql_client)
    status = wait_for_run(topology, graphql_client, run_id, RUN_SECONDS)
    assert status == "SUCCESS", f"run {run_id} ended {status}\n{recent_runs(topology)}\n{topology.logs(60)}"
    return run_id
