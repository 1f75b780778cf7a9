"""Ingesting a batch ten times the size of the UCI file: time and peak memory of `ingest_batch_job`.

Each size runs as its own process (`dagster job execute` of ingest_batch_job on a scratch local
instance), so its peak resident memory is the ingest's alone; the 1x file (the bundled UCI data)
runs beside the 10x one, interleaved, so the two scale against each other on the same machine.

    .venv/bin/python benchmarks/bench_ingest.py [--repeats 3]
"""

import argparse
import os
import resource
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

DAGSTER = Path(sys.executable).parent / "dagster"
# Registers the batch's partition, then runs the job: what the landing-zone sensor's run does.
INGEST = """
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
    print(validated.metadata["dagster/partition_row_count"].value)
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
    # The largest child so far: runs go small, large, small, ..., so after each large run this
    # is the large file's peak, and the small runs are measured before any large one.
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mib, int(completed.stdout.split()[-1])


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
        rows: dict[str, int] = {}
        peaks: dict[str, float] = {}
        small_peak = 0.0
        for round_number in range(args.repeats):
            for name in files:
                home = scratch / f"home-{round_number}-{name}"
                prepare_home(home)
                env = {**os.environ, "DAGSTER_HOME": str(home), "SKINSEG_DATA_DIR": str(scratch / f"data-{round_number}-{name}")}
                env.pop("SKINSEG_DEPLOYMENT", None)
                elapsed, peak_mib, validated = ingest(name, scratch / name, env)
                seconds[name].append(elapsed)
                rows[name] = validated
                if name == "uci-times-one.txt" and round_number == 0:
                    small_peak = peak_mib  # before any 10x run
                else:
                    peaks[name] = peak_mib
        peaks["uci-times-one.txt"] = small_peak
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    one, ten = "uci-times-one.txt", "uci-times-ten.txt"
    median = {name: statistics.median(values) for name, values in seconds.items()}
    size_mib = {name: len(data) / 2**20 for name, data in files.items()}
    body = f"""## Ingesting a file ten times the UCI data (`ingest_batch_job`)

`benchmarks/bench_ingest.py --repeats {args.repeats}`, {now()}; {describe_machine()}.

Each ingest is a fresh process (registering the batch, then `ingest_batch_job` in process: read,
parse, validate, quarantine, store raw, validated and rejected rows in DuckDB, the blocking schema
check), the two sizes interleaved; times are medians, memory is the process's peak resident size.

| file | size | rows validated | seconds (median; each) | peak memory |
| --- | --- | --- | --- | --- |
| bundled UCI file, 1x | {size_mib[one]:.1f} MiB | {rows[one]:,} | {median[one]:.2f} ({', '.join(f'{s:.2f}' for s in seconds[one])}) | {peaks[one]:,.0f} MiB |
| the same ten times, 10x | {size_mib[ten]:.1f} MiB | {rows[ten]:,} | {median[ten]:.2f} ({', '.join(f'{s:.2f}' for s in seconds[ten])}) | {peaks[ten]:,.0f} MiB |
| 10x / 1x | 10 | {rows[ten] / rows[one]:.1f} | **{median[ten] / median[one]:.1f}** | **{peaks[ten] / peaks[one]:.1f}** |

The whole file is read at once (no chunking is needed at this size): a line whose fields are
regular is read by Arrow's CSV reader, and each distinct field text is one Python string shared
by all its rows, so the raw frame of 2.45 M rows holds a few hundred strings, not ten million.
Validation works out each rule once per distinct text.
"""
    write_section("ingest", body)
    print(body)


if __name__ == "__main__":
    main()
