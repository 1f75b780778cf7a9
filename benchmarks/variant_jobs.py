"""training_job as two variants, for bench_orchestration's comparison rows (not part of the code location).

- `defs_multiprocess`: the same assets on Dagster's default multiprocess executor, one step at a
  time (the steps share one DuckDB file, which takes one writing process at a time).
- `defs_in_memory`: the same job with both IO managers replaced by Dagster's InMemoryIOManager, so no
  frame or model is stored or loaded between steps. It does less work than the plain calls (a):
  what it costs beyond them is Dagster's alone.
"""

import dagster as dg

from skinseg_assets.definitions import build_definitions
from skinseg_assets.jobs import training_job

skinseg = build_definitions()


def variant(name: str, executor: dg.ExecutorDefinition, resources: dict) -> dg.Definitions:
    job = dg.define_asset_job(name, selection=training_job.selection, tags=training_job.tags, executor_def=executor)
    return dg.Definitions(assets=skinseg.assets, asset_checks=skinseg.asset_checks, resources=resources, jobs=[job])


defs_multiprocess = variant(
    "training_job_multiprocess", dg.multiprocess_executor.configured({"max_concurrent": 1}), skinseg.resources
)
defs_in_memory = variant(
    "training_job_in_memory",
    dg.in_process_executor,
    {**skinseg.resources, "io_manager": dg.InMemoryIOManager(), "model_io_manager": dg.InMemoryIOManager()},
)
