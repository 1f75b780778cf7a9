"""The README's run command, as a newcomer runs it from the repository root, and the notebook that reads its results."""

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import nbformat
import pytest
from nbclient import NotebookClient

from skinseg_assets_tests.helpers import cli_environment, readme_command

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def job_run(tmp_path_factory):
    """The README's job command (its part after the install step), in a scratch copy of the repository root.

    The copy has the root's instance files and nothing else of Dagster's: the checkout's
    `.dagster_home/dagster.yaml` (without any runs a developer made) and the top-level
    `dagster.yaml`, the deployed Postgres instance, which the command must not pick up. It also
    has the `./.env` the README has an operator write for docker compose (a database password and
    the "Real GCS" settings), which Dagster's CLI reads too: the run must stay local all the same.
    """
    workdir = tmp_path_factory.mktemp("fresh-checkout")
    (workdir / ".dagster_home").mkdir()
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", workdir / ".dagster_home" / "dagster.yaml")
    shutil.copy(ROOT / "dagster.yaml", workdir / "dagster.yaml")
    shutil.copy(ROOT / "workspace.yaml", workdir / "workspace.yaml")
    (workdir / ".env").write_text("DAGSTER_PG_PASSWORD=0123456789abcdef0123456789abcdef\n" + readme_real_gcs_settings())
    command = readme_command("run-command").split(" && ")[-1]
    assert command.startswith('DAGSTER_HOME="$PWD/.dagster_home" .venv/bin/dagster '), command
    command = command.replace(".venv/bin/", f"{VENV_BIN}/")
    env = cli_environment(SKINSEG_DATA_DIR=str(workdir / "data"))
    completed = subprocess.run(
        ["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    env["DAGSTER_HOME"] = str(workdir / ".dagster_home")
    return {"workdir": workdir, "env": env, "output": completed.stdout + completed.stderr}


def readme_real_gcs_settings() -> str:
    """The README's block of settings to put in ./.env for real GCS."""
    match = re.search(r"### Real GCS\n.+?```bash\n(.+?)```", (ROOT / "README.md").read_text(), re.S)
    assert match, "README.md has no bash block under '### Real GCS'"
    return match.group(1)


def test_ci_runs_the_readmes_test_command_and_keeps_its_exit_code():
    script = (ROOT / ".ci" / "run").read_text()
    extraction = next(line for line in script.splitlines() if line.startswith("test_command=$("))
    extracted = subprocess.run(
        ["bash", "-c", f'{extraction}; printf %s "$test_command"'], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert extracted == readme_command("test-command") and extracted.endswith("pytest")
    # The command's own exit code is the script's: nothing after it, nothing that forgives a failure.
    assert script.rstrip().splitlines()[-1] == 'bash -euo pipefail -c "$test_command"'
    assert "set -euo pipefail" in script and "export CI=true" in script
    assert not re.search(r"\|\|\s*(true|:|exit 0)(?=\s|;|$)|set \+e|set \+o errexit", script, re.M)


def test_job_execute_succeeds_with_every_check(job_run):
    output = job_run["output"]
    assert 'RUN_SUCCESS - Finished execution of run for "training_job"' in output
    for check in ("validated_pixels_schema", "colours_disjoint", "f1_above_floor"):
        assert re.search(rf"Asset check '{check}' on '\w+' passed", output), check


def test_dagster_job_execute_takes_settings_from_dot_env_in_the_working_folder(tmp_path):
    """Why the README warns about ./.env: Dagster's CLI reads it (its values win over the shell's)."""
    (tmp_path / ".env").write_text("SKINSEG_DEPLOYMENT=from-dot-env\n")
    env = cli_environment(DAGSTER_HOME=str(tmp_path), SKINSEG_DEPLOYMENT="local", SKINSEG_DATA_DIR=str(tmp_path / "data"))
    completed = subprocess.run(
        [str(VENV_BIN / "dagster"), "job", "execute", "-m", "skinseg_assets", "-j", "training_job"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode != 0
    assert "SKINSEG_DEPLOYMENT='from-dot-env' is not one of local, gcs" in completed.stdout + completed.stderr


def test_compose_settings_in_dot_env_leave_the_readme_run_local(job_run):
    assert "SKINSEG_GCS_BUCKET=acme-skinseg-models" in (job_run["workdir"] / ".env").read_text()
    blobs = job_run["workdir"] / "data" / "blobs"
    assert (blobs / "champions" / "current.json").is_file() and list(blobs.rglob("*.skops"))


def test_the_run_is_recorded_in_the_local_sqlite_instance_not_the_root_one(job_run):
    home = job_run["workdir"] / ".dagster_home"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert [(run.job_name, run.status) for run in runs] == [("training_job", dg.DagsterRunStatus.SUCCESS)]
        assert "Sqlite" in type(instance.run_storage).__name__
    assert (home / "history" / "runs.db").is_file()


def test_metrics_load_in_a_new_process_after_the_job(job_run):
    script = (
        "from dagster import DagsterInstance\n"
        "from skinseg_assets import defs\n"
        "metrics = defs.load_asset_value('model_metrics', instance=DagsterInstance.get())\n"
        "print(round(float(metrics['f1'].iat[0]), 6), int(metrics['training_rows'].iat[0]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], env=job_run["env"], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    f1, training_rows = completed.stdout.split()
    assert float(f1) >= 0.997
    assert 190_000 < int(training_rows) < 205_000


def test_the_notebook_runs_against_the_job_results(job_run, monkeypatch):
    for name in ("DAGSTER_HOME", "SKINSEG_DATA_DIR"):
        monkeypatch.setenv(name, job_run["env"][name])
    notebook = nbformat.read(ROOT / "notebooks" / "explore_assets.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    text = "".join(output.get("text", "") for output in outputs)
    assert "validated pixels" in text and "accuracy on test_pixels" in text
    assert any("image/png" in output.get("data", {}) for output in outputs), "the colour-space plot is missing"


def test_the_readme_scoring_examples_show_what_the_job_model_gives(job_run, tmp_path):
    """The README's sample outputs of the service and the CLI, against the model the run command trained."""
    readme = (ROOT / "README.md").read_text()
    (answer,) = re.findall(r'^# (\{"model_version".*"skin_probability".*\})$', readme, re.M)
    documented = json.loads(answer)
    scored = subprocess.run(
        [str(VENV_BIN / "skinseg"), "predict"], input="74,85,123\n250,250,250\n",
        env=job_run["env"], capture_output=True, text=True, timeout=300,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO(scored.stdout)))
    assert [row["label"] for row in rows] == documented["labels"]
    assert [float(row["skin_probability"]) for row in rows] == documented["skin_probability"]
    assert f"champion v{documented['model_version']:04d}" in scored.stderr

    make_photo = re.findall(r"^(\.venv/bin/python -c \"from skimage import data.*)$", readme, re.M)[0]
    # The README shows the lookup-table scorer (serving_job ran before it there); this run has no
    # table yet, so the model scores: the same decisions, the same skin share.
    (segment_line, shown) = re.search(
        r"^(\.venv/bin/skinseg segment .*)\n# (data/mask\.png: skin share [\d.]+ \(champion v\d+), lookup-table scorer\)$",
        readme,
        re.M,
    ).groups()
    (tmp_path / "data").mkdir()
    for command in (make_photo, segment_line):
        completed = subprocess.run(
            ["bash", "-c", command.replace(".venv/bin/", f"{VENV_BIN}/")],
            cwd=tmp_path, env=job_run["env"], capture_output=True, text=True, timeout=300,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"{shown}, model scorer)" in completed.stdout + completed.stderr


def test_the_readme_takes_a_new_batch_through_without_the_daemon(job_run, tmp_path):
    """The README's "New data" commands with no daemon: every ninth bundled row lands as day-1.txt,
    is registered and ingested as its own batch, and the next training run trains on it too."""
    from skinseg_assets.assets.metadata import latest_materialization_metadata
    from skinseg_assets.pixels.batches import BUNDLED_BATCH
    from skinseg_assets.pixels.source import read_bundled_uci

    checkout = tmp_path / "checkout"  # a copy: the other tests read the job's results as they were
    shutil.copytree(job_run["workdir"], checkout)
    env = {**job_run["env"], "DAGSTER_HOME": str(checkout / ".dagster_home"), "SKINSEG_DATA_DIR": str(checkout / "data")}
    readme = (ROOT / "README.md").read_text()
    (make_batch,) = re.findall(r"```bash\n(mkdir -p data/landing\n\.venv/bin/python -c \"from skinseg_assets\.pixels\.source import read_bundled_uci.+?)\n```", readme, re.S)
    for command in (make_batch, readme_command("new-data-without-daemon")):
        completed = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command.replace(".venv/bin/", f"{VENV_BIN}/")],
            cwd=checkout, env=env, capture_output=True, text=True, timeout=600,
        )
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    day_1_rows = len(read_bundled_uci().content.decode().splitlines()[::9])
    with dg.DagsterInstance.from_config(str(checkout / ".dagster_home")) as instance:
        runs = [(run.job_name, run.status) for run in reversed(instance.get_runs())]
        assert runs == [("training_job", dg.DagsterRunStatus.SUCCESS), ("ingest_batch_job", dg.DagsterRunStatus.SUCCESS),
                        ("training_job", dg.DagsterRunStatus.SUCCESS)]
        validated = latest_materialization_metadata(instance, dg.AssetKey("validated_skin_pixels"), "day-1.txt")
        assert validated["dagster/partition_row_count"].value == day_1_rows
        model_card = latest_materialization_metadata(instance, dg.AssetKey("skin_classifier"))
        assert model_card["Training batches"].value == sorted([BUNDLED_BATCH, "day-1.txt"])
