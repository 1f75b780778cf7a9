"""The real daemon: a file dropped in the landing zone ends in a retrained, re-evaluated model.

Here on the local instance and a local landing zone; the same with a gs:// landing zone on the
Postgres instance is `deployment/test_topology.py::test_file_dropped_in_the_gs_landing_zone_is_trained_on`.
"""

import dagster as dg
import pytest

from skinseg_assets_tests.daemon import prepare_home, run_daemon_until_retrained
from skinseg_assets_tests.helpers import land_uci_sample

SENSOR_INTERVAL_SECONDS = 3


@pytest.fixture
def daemon_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster-home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SKINSEG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SKINSEG_SENSOR_INTERVAL_SECONDS", str(SENSOR_INTERVAL_SECONDS))
    monkeypatch.delenv("SKINSEG_DEPLOYMENT", raising=False)
    prepare_home(home)
    return home


def test_a_file_landing_locally_retrains_the_model(daemon_home, tmp_path):
    def drop_file():
        return land_uci_sample(tmp_path / "data" / "landing", "day-1.txt", every=9)

    # Several sensor intervals pass during each automation run: nothing is retrained twice.
    outcome = run_daemon_until_retrained(daemon_home, drop_file, settle_seconds=4 * SENSOR_INTERVAL_SECONDS)
    grown = outcome["retrained_rows"] - outcome["first_rows"]
    # The new rows split 80/20 by colour, so the training side grows by most of them.
    assert 0.6 * outcome["new_rows"] < grown <= outcome["new_rows"]
    statuses = [(run.job_name, run.status) for run in outcome["runs"]]
    assert not [status for status in statuses if status[1] == dg.DagsterRunStatus.FAILURE], statuses
    assert sum(job == "ingest_batch_job" for job, _ in statuses) == 2  # the bundled batch, then day-1.txt
    assert outcome["skin_classifier_materializations"] == 2  # the bundled batch, then with day-1.txt

