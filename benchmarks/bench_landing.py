"""From a file landing to new metrics, with the real daemon (the landing-zone sensor + automation).

Starts `dagster-daemon run` on a scratch local instance, waits until the bundled batch is trained,
drops a 27,000-row file into the landing zone and times until model_metrics shows its rows. The
target is one sensor interval plus the pipeline's own time (the ingest run and the retrain run).

    .venv/bin/python benchmarks/bench_landing.py [--interval 5]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from machine import describe_machine, now, write_section  # noqa: E402

from skinseg_assets_tests.daemon import prepare_home, run_daemon_until_retrained  # noqa: E402
from skinseg_assets_tests.helpers import land_uci_sample  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=int, default=5, help="sensor interval in seconds")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="skinseg-landing-"))
    home = scratch / "dagster-home"
    os.environ.update(
        DAGSTER_HOME=str(home),
        SKINSEG_DATA_DIR=str(scratch / "data"),
        SKINSEG_SENSOR_INTERVAL_SECONDS=str(args.interval),
    )
    os.environ.pop("SKINSEG_DEPLOYMENT", None)
    prepare_home(home)

    def drop_file():
        return land_uci_sample(scratch / "data" / "landing", "day-1.txt", every=9)

    outcome = run_daemon_until_retrained(home, drop_file)
    runs = outcome["run_seconds"]
    ingest = next(run["seconds"] for run in runs if run["job"] == "ingest_batch_job" and run["partition"] == "day-1.txt")
    retrain_run = [run for run in runs if "model_metrics" in run["assets"]][-1]
    retrain = retrain_run["seconds"]
    same_run = {"skin_color_lut", "segmented_sample_images"} <= retrain_run["assets"]
    body = f"""## From a landed file to new metrics (real daemon)

`benchmarks/bench_landing.py --interval {args.interval}`, {now()}; {describe_machine()}.

`dagster-daemon run` on a local SQLite instance (`.dagster_home/dagster.yaml`: default run launcher, one process per run, one run at a time). A
{outcome['new_rows']:,}-row file lands in the landing zone (`landing/` in a scratch data folder) after the bundled batch is trained;
the clock stops when `model_metrics` reports training rows that include it
({outcome['first_rows']:,} → {outcome['retrained_rows']:,}).

| | seconds |
| --- | --- |
| landing → new `model_metrics` | **{outcome['seconds_to_new_metrics']:.1f}** |
| sensor interval (also the automation sensor's) | {args.interval} |
| the batch's `ingest_batch_job` run | {ingest:.1f} |
| the automation run that retrained, whole ({", ".join(sorted(retrain_run["assets"]))}) | {retrain:.1f} |

The path is: the sensor's next tick (≤ 1 interval) → `ingest_batch_job` → the automation
sensor's next tick after it (≤ 1 interval) → one automation run that retrains, evaluates and
promotes{", then compiles the champion's lookup table and segments the photos in the same run (`model_metrics` is written before the table)" if same_run else "; the lookup table and photos follow in a later run"}. Each run is a new process that loads the code
location first; what the two runs do not account for is that start-up and the automation
sensor's evaluation.
"""
    write_section("landing", body)
    print(body)


if __name__ == "__main__":
    main()
