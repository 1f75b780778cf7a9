import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from skinseg_assets import defs, settings
from skinseg_assets.definitions import build_definitions

CORE_ASSETS = {
    "raw_skin_pixels",
    "validated_skin_pixels",
    "rejected_skin_pixels",
    "train_pixels",
    "test_pixels",
    "skin_classifier",
    "model_metrics",
}


def test_every_job_resolves_and_says_what_it_does():
    jobs = {job.name: job for job in defs.resolve_all_job_defs() if job.name != "__ASSET_JOB"}
    assert set(jobs) == {"training_job", "ingest_batch_job", "serving_job", "rollback_champion_job"}
    assert all(job.description for job in jobs.values())


def test_every_run_executes_in_one_process():
    # Including the runs the automation sensor launches (the implicit asset job): a process per
    # step makes training_job four to five times slower here (BENCHMARKS.md, orchestration row (d)).
    jobs = [defs.resolve_implicit_global_asset_job_def(), *defs.resolve_all_job_defs()]
    assert {job.executor_def.name for job in jobs} == {dg.in_process_executor.name}


def test_training_job_covers_raw_to_metrics():
    job = defs.resolve_job_def("training_job")
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert CORE_ASSETS <= keys


def test_every_asset_says_what_it_is():
    for spec in defs.resolve_all_asset_specs():
        assert spec.description, f"{spec.key.to_user_string()} has no description"


def test_blocking_checks_guard_data_and_model():
    graph = defs.resolve_asset_graph()
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    for name in ("validated_pixels_schema", "colours_disjoint", "f1_above_floor"):
        assert checks[name].blocking, f"{name} should block downstream assets"


def test_deployments_expose_the_same_resource_keys(data_dir):
    local, gcs = build_definitions("local").resources, build_definitions("gcs").resources
    assert set(gcs) == set(local)
    assert {"io_manager", "model_io_manager", "blob_store", "warehouse", "gcs", "landing_zone"} <= set(local)
    assert type(local["blob_store"]) is not type(gcs["blob_store"])  # the keys are the same, the storage is not


@pytest.mark.parametrize("key", ["io_manager", "warehouse"])
def test_the_data_folder_is_made_when_storage_is_first_used_not_when_the_code_location_loads(key, data_dir):
    definitions = build_definitions("local")
    assert not data_dir.exists()  # a code location that only loads (webserver, code server) writes nothing
    with dg.build_resources({key: definitions.resources[key]}):
        assert data_dir.is_dir()  # DuckDB, which makes its file but not its folder, can now open it


def test_unknown_deployment_is_refused(monkeypatch):
    monkeypatch.setenv(settings.DEPLOYMENT_ENV, "azure")
    with pytest.raises(ValueError, match="SKINSEG_DEPLOYMENT='azure'"):
        settings.deployment()


def test_a_sensor_interval_that_is_not_a_number_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(settings.SENSOR_INTERVAL_ENV, "30s")
    with pytest.raises(ValueError, match=r"SKINSEG_SENSOR_INTERVAL_SECONDS='30s' is not a whole number of seconds"):
        settings.sensor_interval_seconds()
    monkeypatch.setenv(settings.SENSOR_INTERVAL_ENV, "5")
    assert settings.sensor_interval_seconds() == 5


@pytest.mark.parametrize("configured, expected", [(None, 30), ("5", 5)], ids=["default", "from-the-environment"])
def test_both_sensors_tick_at_the_configured_interval(configured, expected):
    # Read when the code location is imported: a fresh interpreter for each setting.
    env = {key: value for key, value in os.environ.items() if key != settings.SENSOR_INTERVAL_ENV}
    if configured is not None:
        env[settings.SENSOR_INTERVAL_ENV] = configured
    probe = (
        "from skinseg_assets.sensors import automation_sensor, landing_zone_sensor\n"
        "print(landing_zone_sensor.minimum_interval_seconds, automation_sensor.minimum_interval_seconds)"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == [str(expected)] * 2


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path / "here"))
    assert settings.data_dir() == (tmp_path / "here").resolve()
    monkeypatch.delenv(settings.DATA_DIR_ENV)
    assert settings.data_dir().name == "data"


def modules_loaded_by(statement: str, env: dict | None = None) -> set[str]:
    """The top-level packages a fresh interpreter holds after running `statement`."""
    probe = f"import sys\n{statement}\nprint(' '.join(sorted({{name.split('.')[0] for name in sys.modules}})))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return set(completed.stdout.split())


def test_the_code_location_loads_without_network_or_credentials():
    offline = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GOOGLE_", "STORAGE_EMULATOR", "SKINSEG_GCS", "SKINSEG_GCP"))
    }
    # Any connection attempt through HTTP(S) goes to a closed port and fails, and every attempt
    # (a name looked up, a socket connected) is recorded.
    offline.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", SKINSEG_DEPLOYMENT="local")
    probe = (
        "import json, socket\n"
        "attempts = []\n"
        "def recorded(name, original):\n"
        "    def call(*args, **kwargs):\n"
        "        attempts.append([name, repr(args[-1] if name != 'getaddrinfo' else args[0])])\n"
        "        return original(*args, **kwargs)\n"
        "    return call\n"
        "socket.getaddrinfo = recorded('getaddrinfo', socket.getaddrinfo)\n"
        "socket.socket.connect = recorded('connect', socket.socket.connect)\n"
        "socket.socket.connect_ex = recorded('connect_ex', socket.socket.connect_ex)\n"
        "import skinseg_assets\n"
        "print(len(skinseg_assets.defs.resolve_all_job_defs()), json.dumps(attempts))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=offline)
    assert completed.returncode == 0, completed.stderr[-3000:]
    jobs, attempts = completed.stdout.strip().split(" ", 1)
    assert int(jobs) > 0
    assert json.loads(attempts) == []


def test_plain_pixel_functions_load_no_dagster():
    assert "dagster" not in modules_loaded_by("import skinseg_assets.pixels.rules, skinseg_assets.pixels.split")


def test_the_local_code_location_loads_no_google_cloud_library():
    # Every run process loads the code location; dagster-gcp (with BigQuery, Dataproc and
    # IPython) is imported only where a GCS client is made.
    loaded = modules_loaded_by("import skinseg_assets; skinseg_assets.defs")
    assert "dagster" in loaded
    assert not loaded & {"dagster_gcp", "googleapiclient", "IPython"}


def test_benchmark_variants_change_training_job_in_one_respect_each():
    # bench_orchestration's rows (d) and (e) are only evidence if they run training_job's own steps.
    import runpy
    from pathlib import Path

    variants = runpy.run_path(str(Path(__file__).resolve().parents[1] / "benchmarks" / "variant_jobs.py"))
    training = defs.resolve_job_def("training_job")
    steps = {node.name for node in training.graph.node_defs}
    for definitions, job_name in ((variants["defs_multiprocess"], "training_job_multiprocess"),
                                  (variants["defs_in_memory"], "training_job_in_memory")):
        job = definitions.resolve_job_def(job_name)
        assert {node.name for node in job.graph.node_defs} == steps
        assert job.tags == training.tags
    assert variants["defs_multiprocess"].resolve_job_def("training_job_multiprocess").executor_def.name == "multiprocess"
    assert variants["defs_in_memory"].resolve_job_def("training_job_in_memory").executor_def.name == dg.in_process_executor.name
    assert {key: type(resource) for key, resource in variants["defs_multiprocess"].resources.items()} == {
        key: type(resource) for key, resource in build_definitions().resources.items()
    }
    in_memory = variants["defs_in_memory"].resources
    assert all(isinstance(in_memory[key], dg.InMemoryIOManager) for key in ("io_manager", "model_io_manager"))


def test_benchmark_floor_jobs_have_training_jobs_shape_and_do_the_plain_calls_work(tmp_path, monkeypatch):
    # bench_orchestration's floor, (i) + (j) - (c), is only a floor on training_job if (j) has its
    # graph and (i) does all of (a)'s work.
    import runpy

    import duckdb

    from skinseg_assets_tests.helpers import REPO_ROOT

    floor = runpy.run_path(str(REPO_ROOT / "benchmarks" / "floor_jobs.py"))
    job_shape = floor["job_shape"]
    shape = job_shape(floor["defs_shape"], "shape_job")
    assert shape == job_shape(defs, "training_job")
    assert all(shape) and shape != job_shape(defs, "ingest_batch_job")  # the comparison tells jobs apart

    monkeypatch.setenv("SKINSEG_DATA_DIR", str(tmp_path))
    with dg.instance_for_test() as instance:
        assert floor["defs_all_work"].resolve_job_def("all_work_job").execute_in_process(instance=instance).success
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as warehouse:
        stored = {table: warehouse.execute(f"select count(*) from {table}").fetchone()[0] for table in (
            "raw_skin_pixels", "validated_skin_pixels", "rejected_skin_pixels", "train_pixels", "test_pixels",
            "model_metrics_history")}
    assert stored["validated_skin_pixels"] + stored["rejected_skin_pixels"] == stored["raw_skin_pixels"] == 245_057
    assert stored["train_pixels"] + stored["test_pixels"] == stored["validated_skin_pixels"]
    assert stored["model_metrics_history"] == 1
    assert {path.name for path in tmp_path.iterdir()} >= {"skin_classifier.skops", "champion.skops", "model_metrics"}


def test_the_readme_run_configuration_is_valid_for_training_job():
    """README's Settings block, as a user would paste it into the Launchpad."""
    import re

    import yaml

    from skinseg_assets_tests.helpers import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"Run configuration \(Launchpad.*?```yaml\n(.+?)\n```", readme, re.S)
    assert block, "README.md has no run-configuration block"
    run_config = yaml.safe_load(block.group(1))
    assert dg.validate_run_config(defs.resolve_job_def("training_job"), run_config)
    assert run_config["ops"]["skin_classifier"]["config"]["estimator"] == {"extra_trees": {"n_estimators": 200}}
