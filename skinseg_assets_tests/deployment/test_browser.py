"""The deployed UI in a real browser: headless Chromium against the topology's webserver.

Screenshots go to the test's temporary folder; with SKINSEG_UPDATE_SCREENSHOTS=1 they also
replace docs/asset-graph.png and docs/model-metrics.png (the pictures in the README).
"""

import html
import os
import re
import shutil
import struct
import urllib.parse
from pathlib import Path

import pytest
import yaml

from skinseg_assets_tests.deployment.browser import (
    CHROMIUM_INSTALL_HINT,
    DevToolsPage,
    dump_dom,
    find_chromium,
    screenshot,
    visible_text,
)
from skinseg_assets_tests.deployment.conftest import RUN_SECONDS, skip_or_fail
from skinseg_assets_tests.deployment.topology import (
    LOCATION_NAME,
    REPO_ROOT,
    REPOSITORY_NAME,
    Topology,
    launch_training_run,
    materialization_metadata,
    recent_runs,
    wait_for_run,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gql")

DOCS = REPO_ROOT / "docs"
UPDATE_SCREENSHOTS_ENV = "SKINSEG_UPDATE_SCREENSHOTS"
SCREENSHOT_SIZE = (1400, 900)
# Wide enough that the graph fits at a zoom where nodes carry their full names (narrower
# windows draw "minimal" nodes with names shortened in the middle).
FULL_NAMES_WINDOW = (3000, 1200)
MODEL_METRICS_KEYS = ("Accuracy", "Precision", "Recall", "F1", "ROC AUC", "Confusion matrix", "ROC curve")
PLOTS = ("Confusion matrix", "ROC curve")

ASSET_NODES_QUERY = "query AssetNodes { assetNodes { assetKey { path } groupName } }"
MATERIALIZATION_RUNS_QUERY = """
query MaterializationRuns {
  assetOrError(assetKey: {path: ["model_metrics"]}) {
    ... on Asset { assetMaterializations(limit: 20) { runId } }
  }
}
"""


@pytest.fixture(scope="package")
def chromium() -> str:
    """Debian's chromium; listed first by the tests so a missing browser skips before the topology starts."""
    path = find_chromium()
    if path is None:
        skip_or_fail(f"no chromium on PATH; install it: {CHROMIUM_INSTALL_HINT}")
    return path


def keep_screenshot(taken: Path) -> None:
    """Replace the picture in docs/ with a new screenshot when asked to (SKINSEG_UPDATE_SCREENSHOTS=1)."""
    if os.environ.get(UPDATE_SCREENSHOTS_ENV) == "1":
        shutil.copyfile(taken, DOCS / taken.name)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def asset_graph_url(topology: Topology, groups: set[str]) -> str:
    """The global lineage page with every group expanded (the UI collapses them by default).

    `expanded` takes the UI's group ids; both spellings are given, whichever the UI uses.
    """
    ids = [f"global@global:{group}" for group in sorted(groups)]
    ids += [f"{REPOSITORY_NAME}@{LOCATION_NAME}:{group}" for group in sorted(groups)]
    return f"{topology.webserver_url}/asset-groups?expanded={urllib.parse.quote(','.join(ids))}"


def test_asset_graph_shows_every_asset_key(chromium: str, topology: Topology, first_training_run: str, tmp_path: Path):
    nodes = topology.graphql(ASSET_NODES_QUERY)["assetNodes"]
    asset_keys = {"/".join(node["assetKey"]["path"]) for node in nodes}
    assert {"raw_skin_pixels", "skin_classifier", "model_metrics"} <= asset_keys
    url = asset_graph_url(topology, {node["groupName"] for node in nodes})

    dom = html.unescape(dump_dom(chromium, url, window=FULL_NAMES_WINDOW))
    missing = sorted(key for key in asset_keys if f">{key}<" not in dom)
    assert not missing, f"the asset graph at {url} does not show {missing}\n{topology.logs(10)}"

    picture = screenshot(chromium, url, tmp_path / "asset-graph.png", window=SCREENSHOT_SIZE)
    assert png_size(picture) == SCREENSHOT_SIZE
    keep_screenshot(picture)


SHOW_PLOT = """(() => {
  const row = [...document.querySelectorAll('tr')]
    .find(r => r.cells.length > 1 && r.cells[0].innerText.trim() === %s);
  const link = row && [...row.querySelectorAll('a')].find(a => a.innerText.includes('Show Markdown'));
  if (link) { link.click(); }
  return Boolean(link);
})()"""
LOADED_PLOT = """(() => {
  const dialog = [...document.querySelectorAll('[role=dialog]')].find(d => d.innerText.includes(%s));
  const image = dialog && [...dialog.querySelectorAll('img')]
    .find(i => i.src.startsWith('data:image/png') && i.complete && i.naturalWidth > 0);
  return image ? [image.naturalWidth, image.naturalHeight] : null;
})()"""
CLOSE_DIALOG = """(() => {
  const close = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Close');
  if (close) { close.click(); }
  return Boolean(close);
})()"""


def test_model_metrics_materialization_shows_scores_and_plots(
    chromium: str, topology: Topology, first_training_run: str, tmp_path: Path
):
    # The events view: a materialization (the latest; the sensors may have added one since the
    # tests' run), naming the run that made it, with its scores.
    events_url = f"{topology.webserver_url}/assets/model_metrics?view=events"
    dom = html.unescape(dump_dom(chromium, events_url))
    shown = re.search(r"Materialized in run ([0-9a-f]{8})", visible_text(dom))
    assert shown, f"{events_url} shows no materialization:\n{visible_text(dom)[:3000]}"
    materializations = topology.graphql(MATERIALIZATION_RUNS_QUERY)["assetOrError"]["assetMaterializations"]
    assert shown.group(1) in {materialization["runId"][:8] for materialization in materializations}
    missing = [key for key in MODEL_METRICS_KEYS if f">{key}<" not in dom]
    assert not missing, f"{events_url} does not show the metadata {missing}"

    # The plots are Markdown images behind a "[Show Markdown]" link: open each, see it decode.
    overview_url = f"{topology.webserver_url}/assets/model_metrics"
    with DevToolsPage(chromium, window=SCREENSHOT_SIZE) as page:
        page.navigate(overview_url)
        page.wait_for("the model_metrics metadata", "document.body && document.body.innerText.includes('ROC curve')")
        for plot in reversed(PLOTS):  # the confusion matrix last: it stays open for the picture
            assert page.evaluate(SHOW_PLOT % repr(plot)), f"no [Show Markdown] link for {plot} on {overview_url}"
            width, height = page.wait_for(f"the {plot} image", LOADED_PLOT % repr(plot))
            assert width > 100 and height > 100, f"{plot} image is only {width}x{height}"
            if plot != PLOTS[0]:
                assert page.evaluate(CLOSE_DIALOG), f"no Close button on the {plot} dialog"
                page.wait_for(f"the {plot} dialog to close", "!document.querySelector('[role=dialog] img')", 10)
        page.wait_for_transitions()
        picture = page.screenshot(tmp_path / "model-metrics.png")
    assert png_size(picture) == SCREENSHOT_SIZE
    keep_screenshot(picture)


def test_the_checks_tab_says_in_words_how_the_latest_check_went(chromium: str, topology: Topology, first_training_run: str):
    # The result's description, under "Latest execution": the F1 against the floor, without opening metadata.
    checks_url = f"{topology.webserver_url}/assets/model_metrics?view=checks"
    text = visible_text(html.unescape(dump_dom(chromium, checks_url)))
    shown = re.search(r"Latest execution F1 (0\.\d{5}) is at or above the floor 0\.997", text)
    assert shown, f"{checks_url} does not describe the latest f1_above_floor result:\n{text[:3000]}"
    f1 = re.search(r"Metadata F1 (0\.\d+)", text)
    assert f1 and f"{float(f1.group(1)):.5f}" == shown.group(1)


RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) { ... on Run { parentRunId runConfigYaml stepStats { stepKey status } } }
}
"""
# The run page's re-execute menu: the arrow beside "Re-execute all" opens it.
OPEN_REEXECUTE_MENU = """(() => {
  const main = [...document.querySelectorAll('button')].find(b => b.innerText.trim().startsWith('Re-execute all'));
  const arrow = main && main.nextElementSibling;
  if (arrow) { arrow.click(); }
  return Boolean(arrow);
})()"""
CLICK_FROM_FAILURE = """(() => {
  const items = [...document.querySelectorAll('[role=menuitem], a, li')]
    .filter(e => e.innerText && e.innerText.trim().startsWith('From failure'));
  const item = items[items.length - 1];  // the innermost: the element that handles the click
  if (item && item.getAttribute('aria-disabled') !== 'true') { item.click(); return true; }
  return false;
})()"""


def test_re_execute_from_failure_on_the_run_page_runs_the_failed_step_again_with_the_runs_config(
    chromium: str, topology: Topology, graphql_client, first_training_run: str, tmp_path: Path
):
    """As the README says: a failed run's page offers Re-execute → From failure, which runs only the
    failed step again, with the failed run's config. Ends with a passing run again, so the latest
    f1_above_floor result is a pass, as the other tests expect."""
    too_high = {"ops": {"model_metrics": {"config": {"min_f1": 1.0}}}}
    failed = launch_training_run(topology, graphql_client, run_config=too_high)
    assert wait_for_run(topology, graphql_client, failed, RUN_SECONDS) == "FAILURE"

    with DevToolsPage(chromium, window=SCREENSHOT_SIZE) as page:
        page.navigate(f"{topology.webserver_url}/runs/{failed}")
        page.wait_for("the re-execute menu", OPEN_REEXECUTE_MENU)
        page.wait_for("'From failure' enabled in the menu", CLICK_FROM_FAILURE)
        child_path = page.wait_for(
            "the re-execution's page",
            f"location.pathname.startsWith('/runs/') && !location.pathname.includes('{failed}') && location.pathname",
        )
    child = child_path.rstrip("/").split("/")[-1]
    # The same config, so the same floor: the check fails again, on the same model.
    assert wait_for_run(topology, graphql_client, child, RUN_SECONDS) == "FAILURE"
    run = topology.graphql(RUN_QUERY, {"runId": child})["runOrError"]
    assert run["parentRunId"] == failed and yaml.safe_load(run["runConfigYaml"]) == too_high
    # Only the step that failed ran again (production_skin_classifier, held back again, never started).
    assert {step["stepKey"]: step["status"] for step in run["stepStats"]} == {"model_metrics": "FAILURE"}
    assert materialization_metadata(topology, "model_metrics", child)["Training rows"] == (
        materialization_metadata(topology, "model_metrics", failed)["Training rows"]
    )

    restored = launch_training_run(topology, graphql_client)
    assert wait_for_run(topology, graphql_client, restored, RUN_SECONDS) == "SUCCESS", recent_runs(topology)
