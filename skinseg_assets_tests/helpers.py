"""Helpers shared by the tests: run skinseg's real jobs in-process against the test settings."""

import re
from pathlib import Path

import dagster as dg

from skinseg_assets.definitions import build_definitions

REPO_ROOT = Path(__file__).resolve().parents[1]


def readme_command(marker: str) -> str:
    """The README's bash block after `<!-- marker -->` (`run-command` or `test-command`)."""
    readme = (REPO_ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```bash\n(.+?)\n```", readme, re.S)
    assert match, f"README.md has no bash block after <!-- {marker} -->"
    return match.group(1).strip()


def run_training_job(
    instance: dg.DagsterInstance,
    run_config: dict | None = None,
    deployment: str | None = None,
    raise_on_error: bool = True,
) -> tuple[dg.Definitions, dg.ExecuteInProcessResult]:
    """Build Definitions from the current environment and execute training_job in this process."""
    defs = build_definitions(deployment)
    result = defs.resolve_job_def("training_job").execute_in_process(
        instance=instance, run_config=run_config or {}, raise_on_error=raise_on_error
    )
    return defs, result


def source_config(path: Path | str) -> dict:
    """Run config pointing raw_skin_pixels at a pixel file."""
    return {"ops": {"raw_skin_pixels": {"config": {"source_uri": str(path)}}}}


def sample_run_config(path: Path | str, min_f1: float = 0.95) -> dict:
    """Run config for a small sample: the F1 floor suits the full data, a sample trains a weaker model."""
    run_config = source_config(path)
    run_config["ops"]["model_metrics"] = {"config": {"min_f1": min_f1}}
    return run_config


def write_pixels(path: Path, rows: list[tuple], delimiter: str = "\t") -> Path:
    path.write_text("".join(delimiter.join(str(field) for field in row) + "\n" for row in rows))
    return path


def write_uci_sample(path: Path, every: int = 25) -> Path:
    """Every `every`-th line of the bundled UCI file: a small file with both classes, real colours."""
    from skinseg_assets.pixels.source import read_bundled_uci

    lines = read_bundled_uci().content.decode().splitlines(keepends=True)
    path.write_text("".join(lines[::every]))
    return path
