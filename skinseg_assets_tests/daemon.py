"""Driving a real `dagster-daemon run` on the code location (end-to-end tests and benchmarks)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from skinseg_assets.sensors import UNFINISHED_RUNS
from skinseg_assets_tests.processes import stop_process_group

ROOT = Path(__file__).resolve().parents[1]
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


def prepare_home(home: Path) -> None:
    """A local (SQLite) instance in `home`, its storages created before any process starts.

    The daemon and its code server would otherwise both migrate a fresh instance at once.
    """
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)):
        pass


def run_durations(instance: dg.DagsterInstance) -> list[dict]:
    """Every finished run, oldest first: job, partition, the assets it targeted and its seconds."""
    durations = []
    for record in reversed(instance.get_run_records()):
        run = record.dagster_run
        if record.start_time and record.end_time:
            durations.append(
                {
                    "job": run.job_name,
                    "partition": run.tags.get("dagster/partition"),
                    "assets": {key.to_user_string() for key in run.asset_selection or ()},
                    "seconds": record.end_time - record.start_time,
                }
            )
    return durations


def wait_until_idle(instance: dg.DagsterInstance, quiet_seconds: float, log: Path, deadline: float) -> None:
    """Return once no run has been queued or running for `quiet_seconds`."""
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED_RUNS)):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_seconds:
            return
        time.sleep(1)
    raise AssertionError(f"runs kept starting for {DEADLINE_SECONDS} s; daemon log tail:\n{log.read_text()[-4000:]}")


def run_daemon_until_retrained(home: Path, drop_file, settle_seconds: float = 0) -> dict:
    """Start `dagster-daemon run` on the code location, drop a file, wait for new metrics.

    With `settle_seconds`, the daemon then runs on until no run is in progress for that long, and
    the result counts how often `skin_classifier` was materialized in all (no run was redundant).
    """
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
            if settle_seconds:
                wait_until_idle(instance, settle_seconds, log, deadline + settle_seconds)
            classifier_records = instance.fetch_materializations(dg.AssetKey("skin_classifier"), limit=100).records
            return {
                "skin_classifier_materializations": len(classifier_records),
                "first_rows": first_rows,
                "retrained_rows": retrained["Training rows"].value,
                "new_rows": new_rows,
                "seconds_to_new_metrics": time.monotonic() - landed_at,
                "runs": instance.get_runs(),
                "run_seconds": run_durations(instance),
            }
    finally:
        stop_process_group(daemon, grace_seconds=30)
