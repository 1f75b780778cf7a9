"""The real daemon: a file dropped in the landing zone ends in a retrained, re-evaluated model."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from skinseg_assets_tests.helpers import write_uci_sample

ROOT = Path(__file__).resolve().parents[2]
DAEMON = Path(sys.executable).parent / "dagster-daemon"
BUNDLED_TRAINING_ROWS_AT_MOST = 200_000  # the bundled batch alone trains on ~197,800 rows
DEADLINE_SECONDS = 420


def latest_metrics(instance: dg.DagsterInstance):
    records = instance.fetch_materializations(dg.AssetKey("model_metrics"), limit=1).records
    return records[0].asset_materialization.metadata if records else None


def wait_for(description, predicate, log: Path, deadline: float):
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {description}; daemon log tail:\n{log.read_text()[-4000:]}")


@pytest.fixture
def daemon_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster-home"
    home.mkdir()
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SKINSEG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SKINSEG_SENSOR_INTERVAL_SECONDS", "3")
    monkeypatch.delenv("SKINSEG_DEPLOYMENT", raising=False)
    # Create the SQLite storages once, here: the daemon and its code server would otherwise both
    # migrate the fresh instance at the same moment.
    with dg.DagsterInstance.get():
        pass
    return home


def run_daemon_until_retrained(home: Path, drop_file) -> dict:
    """Start `dagster-daemon run` on the code location, drop a file, wait for new metrics."""
    log = home / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [str(DAEMON), "run", "-m", "skinseg_assets"],
            cwd=home,
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with dg.DagsterInstance.get() as instance:
            deadline = time.monotonic() + DEADLINE_SECONDS
            # The bundled file is the first batch: the sensor ingests it and automation trains on it.
            first = wait_for("the first model_metrics", lambda: latest_metrics(instance), log, deadline)
            first_rows = first["Training rows"].value
            assert first_rows <= BUNDLED_TRAINING_ROWS_AT_MOST
            new_rows = drop_file()
            landed_at = time.monotonic()
            retrained = wait_for(
                "model_metrics with the new batch's rows",
                lambda: (m := latest_metrics(instance)) and m["Training rows"].value > first_rows and m,
                log,
                deadline,
            )
            return {
                "first_rows": first_rows,
                "retrained_rows": retrained["Training rows"].value,
                "new_rows": new_rows,
                "seconds_to_new_metrics": time.monotonic() - landed_at,
                "runs": instance.get_runs(),
            }
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)


def assert_retrained_with(outcome):
    grown = outcome["retrained_rows"] - outcome["first_rows"]
    # The new rows split 80/20 by colour, so the training side grows by most of them.
    assert 0.6 * outcome["new_rows"] < grown <= outcome["new_rows"]
    statuses = [(run.job_name, run.status) for run in outcome["runs"]]
    assert not [status for status in statuses if status[1] == dg.DagsterRunStatus.FAILURE], statuses
    assert sum(job == "ingest_batch_job" for job, _ in statuses) == 2  # the bundled batch, then day-1.txt


def test_a_file_landing_locally_retrains_the_model(daemon_home, tmp_path):
    landing = tmp_path / "data" / "landing"

    def drop_file():
        landing.mkdir(parents=True, exist_ok=True)
        partial = landing / ".day-1.txt.partial"  # written under a hidden name, then renamed
        write_uci_sample(partial, every=9)
        rows = len(partial.read_text().splitlines())
        partial.rename(landing / "day-1.txt")
        return rows

    outcome = run_daemon_until_retrained(daemon_home, drop_file)
    assert_retrained_with(outcome)


def test_a_file_landing_in_a_gcs_bucket_retrains_the_model(daemon_home, tmp_path, gcs_bucket, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("SKINSEG_LANDING_URI", f"gs://{gcs_bucket}/landing")
    bucket = storage.Client(project="skinseg-test", credentials=AnonymousCredentials()).bucket(gcs_bucket)

    def drop_file():
        sample = write_uci_sample(tmp_path / "day-1.txt", every=9)
        bucket.blob("landing/day-1.txt").upload_from_filename(str(sample))
        return len(sample.read_text().splitlines())

    outcome = run_daemon_until_retrained(daemon_home, drop_file)
    assert_retrained_with(outcome)
