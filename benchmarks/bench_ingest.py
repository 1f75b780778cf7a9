"""Ingesting a batch ten times the size of the UCI file: time and peak memory of `ingest_batch_job`.

Each size runs as its own process (registering the batch, then ingest_batch_job in process on a
scratch local instance, as the sensor's run would), which reports its own peak resident memory;
the 1x file (the bundled UCI data) runs beside the 10x one, interleaved, so the two scale against
each other on the same machine.

    .venv/bin/python benchmarks/bench_ingest.py [--repeats 3]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from machine import describe_machine, now, write_section  # noqa: E402

from skinseg_assets.pixels.source import read_bundled_uci  # noqa: E402
from skinseg_assets_tests.daemon import prepare_home  # noqa: E402

# Registers the batch's partition, then runs the job: what the landing-zone sensor's run does.
INGEST = """
import resource
import sys
import dagster as dg
from skinseg_assets import defs
from skinseg_assets.partitions import pixel_batches

batch, path = sys.argv[1], sys.argv[2]
with dg.DagsterInstance.get() as instance:
    instance.add_dynamic_partitions(pixel_batches.name, [batch])
    result = defs.resolve_job_def("ingest_batch_job").execute_in_process(
        instance=instance,
        partition_key=batch,
        run_config={"ops": {"raw_skin_pixels": {"config": {"source_uri": path}}}},
    )
    assert result.success
    validated = next(
        event
        for event in result.asset_materializations_for_node("validated_and_rejected_skin_pixels")
        if event.asset_key == dg.AssetKey("validated_skin_pixels")
    )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(validated.metadata["dagster/partition_row_count"].value, peak_mib)
"""


def ingest(batch: str, path: Path, env: dict) -> tuple[float, float, int]:
    """Seconds, peak resident MiB and validated rows of one ingest in a fresh process."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", INGEST, batch, str(path)], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"ingest of {path.name} failed:\n{completed.stderr[-4000:]}")
    validated, peak_mib = completed.stdout.split()[-2:]
    return seconds, float(peak_mib), int(validated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="skinseg-ingest-"))
    try:
        content = read_bundled_uci().content
        files = {"uci-times-one.txt": content, "uci-times-ten.txt": content * 10}
        for name, data in files.items():
            (scratch / name).write_bytes(data)
        seconds: dict[str, list[float]] = {name: [] for name in files}
        peaks: dict[str, list[float]] = {name: [] for name in files}
        rows: dict[str, int] = {}
        for round_number in range(args.repeats):
            for name in files:
                home = scratch / f"home-{round_number}-{name}"
                prepare_home(home)
                env = {**os.environ, "DAGSTER_HOME": str(home), "SKINSEG_DATA_DIR": str(scratch / f"data-{round_number}-{name}")}
                env.pop("SKINSEG_DEPLOYMENT", None)
                elapsed, peak_mib, validated = ingest(name, scratch / name, env)
                seconds[name].append(elapsed)
                peaks[name].append(peak_mib)
                rows[name] = validated
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    one, ten = "uci-times-one.txt", "uci-times-ten.txt"
    median = {name: statistics.median(values) for name, values in seconds.items()}
    peak = {name: statistics.median(values) for name, values in peaks.items()}
    size_mib = {name: len(data) / 2**20 for name, data in files.items()}
    body = f"""## Ingesting a file ten times the UCI data (`ingest_batch_job`)

`benchmarks/bench_ingest.py --repeats {args.repeats}`, {now()}; {describe_machine()}.

Each ingest is a fresh process (registering the batch, then `ingest_batch_job` in process: read,
parse, validate, quarantine, store raw, validated and rejected rows in DuckDB, the blocking schema
check), the two sizes interleaved. Both columns are whole processes, medians: the times include
starting Python and loading the code location, the memory includes what the imports take.

| file | size | rows validated | seconds (median; each) | peak memory |
| --- | --- | --- | --- | --- |
| bundled UCI file, 1x | {size_mib[one]:.1f} MiB | {rows[one]:,} | {median[one]:.2f} ({', '.join(f'{s:.2f}' for s in seconds[one])}) | {peak[one]:,.0f} MiB |
| the same ten times, 10x | {size_mib[ten]:.1f} MiB | {rows[ten]:,} | {median[ten]:.2f} ({', '.join(f'{s:.2f}' for s in seconds[ten])}) | {peak[ten]:,.0f} MiB |
| 10x / 1x | 10 | {rows[ten] / rows[one]:.1f} | **{median[ten] / median[one]:.1f}** | **{peak[ten] / peak[one]:.1f}** |

The whole file is read at once (no chunking is needed at this size): a line whose fields are
regular is read by Arrow's CSV reader into one Python string per distinct field text, shared by
all its rows, and validation works out each rule once per distinct text.
"""
    write_section("ingest", body)
    print(body)


if __name__ == "__main__":
    main()
