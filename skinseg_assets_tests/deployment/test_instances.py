"""Two Dagster instances on purpose: SQLite for newcomers, Postgres for the deployment.

`.dagster_home/dagster.yaml` is what the README's commands use (they set DAGSTER_HOME to it);
the top-level `dagster.yaml` is the deployed instance that compose and the topology test use.
Dagster's CLI run from the root WITHOUT DAGSTER_HOME reads the top-level file: the trap the
README warns about, shown here to fail loudly rather than quietly. (The README's job command run
from a copy of the root, with DAGSTER_HOME, is `test_command_line.py`.)
"""

import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from skinseg_assets_tests.helpers import cli_environment, readme_command
from skinseg_assets_tests.deployment.topology import PG_HOST, PG_PORT, PG_USER, REPO_ROOT, VENV_BIN

POSTGRES_SETTINGS = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


def test_readme_run_command_sets_dagster_home_to_the_local_instance():
    command = readme_command("run-command")
    assert 'DAGSTER_HOME="$PWD/.dagster_home"' in command
    assert "dagster job execute -m skinseg_assets -j training_job" in command
    local = yaml.safe_load((REPO_ROOT / ".dagster_home" / "dagster.yaml").read_text()) or {}
    configured_storage = {"storage", "run_storage", "event_log_storage", "schedule_storage"} & set(local)
    assert not configured_storage, f"the local instance must stay on its default SQLite storage, not {configured_storage}"


def test_without_dagster_home_the_root_instance_asks_for_postgres(tmp_path: Path):
    """The trap, made visible: no DAGSTER_HOME at the root means ./dagster.yaml, which names its settings."""
    completed = subprocess.run(
        [str(VENV_BIN / "dagster"), "job", "execute", "-m", "skinseg_assets", "-j", "training_job"],
        cwd=REPO_ROOT,
        env=cli_environment(SKINSEG_DATA_DIR=str(tmp_path / "data")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode != 0
    output = completed.stdout + completed.stderr
    assert re.search(r'environment variable "DAGSTER_PG_\w+" which is not set', output), output[-3000:]
    assert "RUN_START" not in output


@pytest.fixture
def deployed_instance(postgres_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    for name, value in zip(POSTGRES_SETTINGS, (PG_HOST, str(PG_PORT), PG_USER, "", postgres_database)):
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def test_deployed_instance_keeps_everything_in_postgres(deployed_instance: dg.DagsterInstance):
    storages = (deployed_instance.run_storage, deployed_instance.event_log_storage, deployed_instance.schedule_storage)
    assert [type(storage).__name__ for storage in storages] == [
        "PostgresRunStorage",
        "PostgresEventLogStorage",
        "PostgresScheduleStorage",
    ]
    text = (REPO_ROOT / "dagster.yaml").read_text()
    for name in POSTGRES_SETTINGS:
        assert f"env: {name}" in text  # credentials come from the environment, never the file


def test_deployed_instance_is_configured_to_queue_one_run_and_retry_crashed_runs(deployed_instance: dg.DagsterInstance):
    assert type(deployed_instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    # DuckDB allows one writing process: one run at a time.
    assert deployed_instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
    assert deployed_instance.run_retries_enabled and deployed_instance.run_retries_max_retries >= 1
    assert not deployed_instance.run_retries_retry_on_asset_or_op_failure
    assert deployed_instance.run_monitoring_enabled
    # A run that died with user-code (the default launcher cannot report it) is failed after at
    # most an hour, then retried, instead of holding the one-run queue for good.
    assert deployed_instance.run_monitoring_settings["max_runtime_seconds"] == 3600
    assert not deployed_instance.telemetry_enabled and not deployed_instance.nux_enabled


def test_both_instances_queue_one_run_at_a_time(tmp_path: Path):
    """The frames live in one DuckDB file (one writing process): locally as in the deployment."""
    shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        assert not instance.nux_enabled  # no "join the community" dialog in the local UI either
    deployed = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    assert deployed["concurrency"]["runs"]["max_concurrent_runs"] == 1
