"""What Dagster costs: training_job's work as plain calls vs. the same through `dagster job execute`.

Both sides run as whole commands (a fresh Python process each, imports included) on the full
bundled data set, interleaved, several times; the medians give the ratio b/a. Both sides store
what they produce (frames in a DuckDB file, the model as a skops file), since storing the assets
is part of the job's work.

    .venv/bin/python benchmarks/bench_orchestration.py [--repeats 3]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, now, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCAL_INSTANCE_YAML = ROOT / ".dagster_home" / "dagster.yaml"


def timed(command: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}")
    return elapsed, completed.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="skinseg-bench-"))
    home = scratch / "dagster-home"
    home.mkdir()
    shutil.copy(LOCAL_INSTANCE_YAML, home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("SKINSEG_DEPLOYMENT", None)
    plain = [sys.executable, str(ROOT / "benchmarks" / "plain_pipeline.py")]
    dagster = [str(BIN / "dagster"), "job", "execute", "-m", "skinseg_assets", "-j", "training_job"]

    plain_seconds, dagster_seconds, stages = [], [], []
    try:
        # One untimed round first: the instance's SQLite schema and the OS file cache warm up.
        for round_number in range(args.repeats + 1):
            data = scratch / f"data-{round_number}"
            elapsed_plain, output = timed([*plain, "--store", str(data / "plain")], env)
            elapsed_dagster, _ = timed(dagster, {**env, "SKINSEG_DATA_DIR": str(data / "dagster")})
            if round_number:
                plain_seconds.append(elapsed_plain)
                dagster_seconds.append(elapsed_dagster)
                stages.append(json.loads(output))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    a, b = statistics.median(plain_seconds), statistics.median(dagster_seconds)
    fit = statistics.median(stage["fit"] for stage in stages)
    predict = statistics.median(stage["predict"] for stage in stages)
    test_rows = stages[0]["test_rows"]
    body = f"""## Orchestration overhead: plain calls vs. `dagster job execute`

`benchmarks/bench_orchestration.py --repeats {args.repeats}`, {now()}; {describe_machine()}.

(a) `benchmarks/plain_pipeline.py`: read the bundled file, parse, validate, split by colour, fit
the default classifier, evaluate, draw the two plots, store the frames in DuckDB and the model as
skops. (b) `dagster job execute -m skinseg_assets -j training_job` (in-process executor, SQLite
instance, same storage). Whole commands, interleaved, median of {args.repeats} after one warm-up round.

| | median wall time (s) | each run (s) |
| --- | --- | --- |
| (a) plain calls | {a:.2f} | {', '.join(f'{s:.2f}' for s in plain_seconds)} |
| (b) dagster job execute | {b:.2f} | {', '.join(f'{s:.2f}' for s in dagster_seconds)} |
| **ratio b/a** | **{b / a:.2f}** (target ≤ 1.5) | |

Model: fit {fit:.2f} s on {stages[0]['train_rows']:,} rows; predict {predict:.3f} s on {test_rows:,} rows
({test_rows / predict:,.0f} pixels/s); F1 {stages[0]['f1']:.5f}.
"""
    write_section("orchestration", body)
    print(body)


if __name__ == "__main__":
    main()
