"""Jobs for bench_orchestration's rows (c), (i) and (j): what Dagster costs whatever we write.

- `defs_empty` (c): one empty asset: the CLI, the instance and one run, with nothing to do.
- `defs_all_work` (i): the plain calls of (a), `plain_pipeline.main` unchanged, as the one asset
  of an otherwise empty job. It stores its frames and model itself, so no IO manager stores or
  loads anything.
- `defs_shape` (j): training_job's graph with empty bodies: the same steps (single and multi
  assets), dependencies and checks, nothing computed, stored or loaded. Less than the real graph
  in one respect: no asset is partitioned. A test keeps its shape equal to training_job's.

All three load this one file, so what loading it costs is the same in each and cancels in
i + (j − c). Run as `dagster job execute -f benchmarks/floor_jobs.py -a defs_empty -j empty_job`
(`defs_all_work`/`all_work_job`, `defs_shape`/`shape_job`); none imports skinseg_assets.
"""

import os
import sys
from pathlib import Path

import dagster as dg

BENCHMARKS = Path(__file__).resolve().parent


def in_process_job(name: str, *assets, asset_checks=()) -> dg.Definitions:
    return dg.Definitions(
        assets=assets, asset_checks=asset_checks, jobs=[dg.define_asset_job(name, executor_def=dg.in_process_executor)]
    )


@dg.asset
def nothing() -> None:
    return None


defs_empty = in_process_job("empty_job", nothing)


@dg.asset
def all_the_work() -> None:
    """(a)'s work, imports included, into the data folder of this run (SKINSEG_DATA_DIR)."""
    sys.path.insert(0, str(BENCHMARKS))
    import plain_pipeline

    plain_pipeline.main(Path(os.environ["SKINSEG_DATA_DIR"]), None)


defs_all_work = in_process_job("all_work_job", all_the_work)


def job_shape(defs: dg.Definitions, job_name: str) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """A job's assets with their dependencies, its asset checks, and its steps."""
    job = defs.resolve_job_def(job_name)
    graph, selected = job.asset_layer.asset_graph, job.asset_layer.selected_asset_keys
    dependencies = {key.to_user_string(): sorted(p.to_user_string() for p in graph.get(key).parent_keys) for key in selected}
    checks = sorted(check.to_user_string() for check in graph.asset_check_keys if check.asset_key in selected)
    return dependencies, checks, sorted(node.name for node in job.graph.nodes)


def passed(check: str, asset: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(asset_key=asset, check_name=check, passed=True)


@dg.asset
def raw_skin_pixels() -> None:
    return None


@dg.multi_asset(
    outs={"validated_skin_pixels": dg.AssetOut(), "rejected_skin_pixels": dg.AssetOut()}, deps=[raw_skin_pixels]
)
def validated_and_rejected_skin_pixels():
    return None, None


@dg.asset_check(asset="validated_skin_pixels", blocking=True)
def validated_pixels_schema() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.multi_asset(
    outs={"train_pixels": dg.AssetOut(), "test_pixels": dg.AssetOut()},
    deps=["validated_skin_pixels"],
    check_specs=[dg.AssetCheckSpec("colours_disjoint", asset="test_pixels", blocking=True)],
)
def train_and_test_pixels():
    yield dg.Output(None, output_name="train_pixels")
    yield dg.Output(None, output_name="test_pixels")
    yield passed("colours_disjoint", "test_pixels")


@dg.asset(
    deps=["train_pixels", "test_pixels", "validated_skin_pixels"],
    check_specs=[dg.AssetCheckSpec("drift_within_threshold", asset="pixel_drift_report")],
)
def pixel_drift_report():
    yield dg.Output(None)
    yield passed("drift_within_threshold", "pixel_drift_report")


@dg.asset(deps=["train_pixels"])
def skin_classifier() -> None:
    return None


@dg.asset(
    deps=["skin_classifier", "train_pixels", "test_pixels"],
    check_specs=[dg.AssetCheckSpec("f1_above_floor", asset="model_metrics", blocking=True)],
)
def model_metrics():
    yield dg.Output(None)
    yield passed("f1_above_floor", "model_metrics")


@dg.asset(deps=["model_metrics", "skin_classifier", "train_pixels", "test_pixels"])
def production_skin_classifier() -> None:
    return None


defs_shape = in_process_job(
    "shape_job",
    raw_skin_pixels,
    validated_and_rejected_skin_pixels,
    train_and_test_pixels,
    pixel_drift_report,
    skin_classifier,
    model_metrics,
    production_skin_classifier,
    asset_checks=[validated_pixels_schema],
)
