"""The serving assets in a real (small) graph: promotion, rollback, integrity, lookup table, images."""

import json

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from skinseg_assets.assets.serving import (
    production_skin_classifier,
    promoted_at_metadata,
    segmented_sample_images,
    skin_color_lut,
)
from skinseg_assets.assets.training import ColourSplitConfig, model_metrics, skin_classifier
from skinseg_assets.checks import LUT_CHECK_COLOURS, lut_matches_champion
from skinseg_assets.jobs import rollback_champion_job
from skinseg_assets.pixels.colours import colours_of_keys
from skinseg_assets.pixels.lut import COLOURS, lut_is_skin
from skinseg_assets.pixels.metrics import evaluate_classifier
from skinseg_assets.pixels.model import model_is_skin
from skinseg_assets.resources import build_resources
from skinseg_assets.resources.blob_store import LocalBlobStore
from skinseg_assets.resources.champion_store import ChampionStore
from skinseg_assets.resources.warehouse import CHAMPION_HISTORY, METRICS_HISTORY, Warehouse
from skinseg_assets.resources.model_io_manager import UntrustedModelError
from skinseg_assets.pixels.split import TEST_FRACTION, colour_overlap, split_by_colour
from skinseg_assets_tests.champion_fixtures import sample_pixels, small_split, tree_and_lut

# F1 on the small split (20,000 UCI pixels): about 0.81, 0.94 and 0.98.
WORSE = {"max_iter": 3, "learning_rate": 0.3, "max_leaf_nodes": 4}
GOOD = {"max_iter": 10, "max_leaf_nodes": 8}
BETTER = {"max_iter": 40, "max_leaf_nodes": 15}


class SmallSplitConfig(ColourSplitConfig):
    # Each training row this many times over: more rows, the same colours and labels.
    train_copies: int = 1


@dg.multi_asset(outs={"train_pixels": dg.AssetOut(), "test_pixels": dg.AssetOut()})
def small_pixel_split(config: SmallSplitConfig):
    """Stand-in for the real split: 20,000 bundled pixels, split by colour, from one batch."""
    split = small_split() if config.test_fraction == TEST_FRACTION else split_by_colour(sample_pixels(), config.test_fraction)
    train = pd.concat([split.train] * config.train_copies, ignore_index=True)
    return train.assign(batch="sample"), split.test.assign(batch="sample")


CANDIDATE_STEPS = [skin_classifier, model_metrics, production_skin_classifier]
GRAPH = [small_pixel_split, *CANDIDATE_STEPS, skin_color_lut, lut_matches_champion, segmented_sample_images]


def run(
    instance, selection, classifier=None, raise_on_error=True, test_fraction=None, min_f1=0.0, warehouse=None, train_copies=1
) -> dg.ExecuteInProcessResult:
    # These small models are below the production F1 floor on purpose: the champion rule is under
    # test here, not model_metrics' gate (tested in test_gates_and_deployments.py).
    run_config = {"ops": {"model_metrics": {"config": {"min_f1": min_f1}}}} if model_metrics in selection else {"ops": {}}
    if classifier:
        # Exactly the given rounds (no early stopping), so that the three models differ as named.
        settings = {**classifier, "early_stopping": False}
        run_config["ops"]["skin_classifier"] = {"config": {"estimator": {"hist_gradient_boosting": settings}}}
    if test_fraction is not None or train_copies != 1:
        split_config = {"train_copies": train_copies, **({"test_fraction": test_fraction} if test_fraction is not None else {})}
        run_config["ops"]["small_pixel_split"] = {"config": split_config}
    return dg.materialize(
        GRAPH,
        selection=selection,
        instance=instance,
        resources={**build_resources(), **({"warehouse": warehouse} if warehouse else {})},
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def decision(result: dg.ExecuteInProcessResult) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node("production_skin_classifier")[0].metadata.items()}


def train(instance, classifier: dict, first: bool = False) -> dict:
    """Train a candidate and run the champion decision; returns the decision's metadata."""
    selection = [small_pixel_split, *CANDIDATE_STEPS] if first else CANDIDATE_STEPS
    return decision(run(instance, selection, classifier))


def test_a_tie_is_promoted_only_when_the_candidate_saw_more_rows(data_dir, instance):
    assert train(instance, GOOD, first=True)["Champion version"] == "v0001"
    rows = len(small_split().train)
    # The same settings on the same rows twice over: the same model decisions, the same F1.
    more = decision(run(instance, [small_pixel_split, *CANDIDATE_STEPS], GOOD, train_copies=2))
    assert (more["Decision"], more["Champion version"]) == ("promoted", "v0002")
    assert f"tie, and the candidate saw more data ({2 * rows:,} vs {rows:,} training rows)" in more["Reason"]
    again = train(instance, GOOD)  # the same again: no more rows than the champion
    assert (again["Decision"], again["Champion version"]) == ("kept", "v0002")
    assert f"tie, and the candidate saw no more data ({2 * rows:,} vs {2 * rows:,} training rows)" in again["Reason"]


def store(data_dir) -> ChampionStore:
    return ChampionStore(LocalBlobStore(root=str(data_dir / "blobs")))


def history(data_dir) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        return connection.execute(
            f"SELECT action, champion_version FROM skinseg.{CHAMPION_HISTORY} ORDER BY decided_at"
        ).fetchall()


def metrics_history(data_dir) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        return connection.execute(f"SELECT run_id FROM skinseg.{METRICS_HISTORY}").fetchall()


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                texts.append(error.message)
                error = error.cause
    return "\n".join(texts)


def rollback(instance, version: int, raise_on_error=True, warehouse=None) -> dg.ExecuteInProcessResult:
    return rollback_champion_job.execute_in_process(
        run_config={"ops": {"rollback_champion": {"config": {"version": version, "reason": "test"}}}},
        instance=instance,
        resources={**build_resources(), **({"warehouse": warehouse} if warehouse else {})},
        raise_on_error=raise_on_error,
    )


def test_worse_challenger_stays_out_better_one_is_promoted_and_rollback_restores(data_dir, instance):
    first = train(instance, GOOD, first=True)
    assert (first["Decision"], first["Champion version"]) == ("promoted", "v0001")

    worse = train(instance, WORSE)
    assert (worse["Decision"], worse["Champion version"]) == ("kept", "v0001")
    assert "candidate is worse" in worse["Reason"]
    assert worse["Candidate F1 (compared rows)"] < worse["Champion F1 before (compared rows)"]
    assert worse["Compared on"] == "the current test split"

    better = train(instance, BETTER)
    assert (better["Decision"], better["Champion version"]) == ("promoted", "v0002")
    assert better["Candidate F1 (current test split)"] == pytest.approx(better["Candidate F1 in model_metrics"], abs=1e-6)

    again = train(instance, BETTER)  # the same model on the same data: a tie that adds no version
    assert again["Decision"] == "kept" and "tie" in again["Reason"]

    champions = store(data_dir)
    manifest = champions.current()
    assert manifest.version == 2 and manifest.estimator == "HistGradientBoostingClassifier"
    assert manifest.training_data["rows"] == len(small_split().train)
    assert manifest.test_metrics["f1"] == pytest.approx(better["Candidate F1 (current test split)"], abs=1e-6)
    assert manifest.code_version["package"] == "skinseg" and manifest.parameters["max_iter"] == 40

    missing = rollback(instance, 5, raise_on_error=False)
    assert not missing.success and "v0005 does not exist (versions: v0001, v0002)" in failure_messages(missing)
    assert champions.current().version == 2

    graph = dg.Definitions(assets=GRAPH, resources=build_resources())
    before = dg.evaluate_automation_conditions(defs=graph, instance=instance)
    result = rollback(instance, 1)
    assert result.success
    after = dg.evaluate_automation_conditions(defs=graph, instance=instance, cursor=before.cursor)
    requested = {r.key.to_user_string() for r in after.results if r.true_subset.size}
    assert requested == {"skin_color_lut", "segmented_sample_images"}  # the table follows the rollback
    assert champions.current().version == 1 and champions.pointer().action == "rolled_back"
    event = instance.get_latest_materialization_event(dg.AssetKey("production_skin_classifier"))
    assert event.asset_materialization.metadata["Champion version"].value == "v0001"
    assert history(data_dir) == [("promoted", 1), ("kept", 1), ("promoted", 2), ("kept", 2), ("rolled_back", 1)]

    unchanged = rollback(instance, 1, raise_on_error=False)  # to the version that already serves
    assert not unchanged.success
    assert "v0001 already serves: nothing to roll back (other versions: v0002)" in failure_messages(unchanged)
    assert champions.pointer().version == 1 and len(history(data_dir)) == 5

    # The next training run is judged against the rolled-back champion, not the newest version.
    after = train(instance, BETTER)
    rolled_back_model = champions.load_model(champions.manifest(1))
    assert after["Champion F1 before (compared rows)"] == pytest.approx(evaluate_classifier(rolled_back_model, small_split().test).f1, abs=1e-6)
    assert (after["Decision"], after["Champion version"]) == ("promoted", "v0003")


def test_a_champion_from_a_narrower_split_is_compared_only_on_colours_it_never_trained_on(data_dir, instance):
    train(instance, GOOD, first=True)  # the champion: fitted on the default 80/20 split
    result = run(instance, [small_pixel_split, *CANDIDATE_STEPS], GOOD, test_fraction=0.3)
    decision = {k: v.value for k, v in result.asset_materializations_for_node("production_skin_classifier")[0].metadata.items()}
    champion_train = small_split().train
    wider_test = split_by_colour(sample_pixels(), 0.3).test
    unseen = wider_test[~wider_test[["B", "G", "R"]].apply(tuple, axis=1).isin(set(champion_train[["B", "G", "R"]].apply(tuple, axis=1)))]
    assert colour_overlap(wider_test, champion_train) > 0  # on the whole new test split the champion would be flattered
    assert decision["Compared on"] == f"the {len(unseen):,} of {len(wider_test):,} test rows the champion did not train on"
    champion = store(data_dir).load_model(store(data_dir).manifest(1))
    assert decision["Champion F1 before (compared rows)"] == pytest.approx(evaluate_classifier(champion, unseen).f1, abs=1e-6)
    candidate = result.output_for_node("skin_classifier")
    assert decision["Candidate F1 (compared rows)"] == pytest.approx(evaluate_classifier(candidate, unseen).f1, abs=1e-6)
    assert decision["Candidate F1 (current test split)"] == pytest.approx(evaluate_classifier(candidate, wider_test).f1, abs=1e-6)
    assert f"on {decision['Compared on']}" in decision["Reason"]


@pytest.mark.parametrize("judge", [model_metrics, production_skin_classifier], ids=lambda asset: asset.key.to_user_string())
def test_a_candidate_fitted_on_another_split_is_not_judged(judge, data_dir, instance):
    train(instance, GOOD, first=True)
    run(instance, [small_pixel_split], test_fraction=0.3)  # a new split; the candidate is not refitted
    result = run(instance, [judge], raise_on_error=False)
    assert not result.success
    message = str(result.failure_data_for_node(judge.op.name).error)
    assert "skin_classifier was fitted on other training pixels" in message
    assert f"than the current train_pixels ({len(split_by_colour(sample_pixels(), 0.3).train):,} rows" in message
    assert "materialize skin_classifier again first" in message
    assert history(data_dir) == [("promoted", 1)]  # no decision recorded
    assert len(metrics_history(data_dir)) == 1  # nor a score on colours the candidate trained on


def test_a_candidate_below_the_f1_floor_is_not_promoted_by_a_later_run(data_dir, instance):
    train(instance, WORSE, first=True)
    # Trained and scored, below the floor: the blocking check stops the run before the champion.
    failed = run(instance, [skin_classifier, model_metrics, production_skin_classifier], GOOD, raise_on_error=False, min_f1=0.999)
    (check,) = failed.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("f1_above_floor", False)
    assert check.description == f"F1 {check.metadata['F1'].value:.5f} is below the floor 0.999"
    # The champion materialized alone afterwards (say, from the UI) does not promote it either.
    alone = run(instance, [production_skin_classifier], raise_on_error=False)
    assert not alone.success
    message = str(alone.failure_data_for_node("production_skin_classifier").error)
    assert "skin_classifier failed its check f1_above_floor" in message and "below the floor 0.999" in message
    assert store(data_dir).current().version == 1 and history(data_dir) == [("promoted", 1)]


def test_the_floor_holds_on_the_test_split_the_champion_step_scores(data_dir, instance):
    """model_metrics passed the candidate on one split; batches then added test rows it gets wrong."""
    train(instance, GOOD, first=True)
    assert run(instance, [skin_classifier, model_metrics], BETTER, min_f1=0.97).success

    @dg.multi_asset(outs={"train_pixels": dg.AssetOut(), "test_pixels": dg.AssetOut()}, name="small_pixel_split")
    def split_with_harder_test_rows():
        split = small_split()
        relabelled = split.test.iloc[::3].assign(is_skin=lambda rows: ~rows["is_skin"])  # same colours, same side
        return split.train.assign(batch="sample"), pd.concat([split.test, relabelled]).assign(batch="sample")

    result = dg.materialize(
        [split_with_harder_test_rows, *CANDIDATE_STEPS],
        selection=[split_with_harder_test_rows, production_skin_classifier],
        instance=instance,
        resources=build_resources(),
        raise_on_error=False,
    )
    message = str(result.failure_data_for_node("production_skin_classifier").error)
    assert "F1 on the current test split is 0." in message and "below the floor 0.97" in message
    assert "materialize model_metrics again" in message
    assert store(data_dir).current().version == 1 and history(data_dir) == [("promoted", 1)]


def test_a_candidate_model_metrics_has_not_evaluated_is_not_judged(data_dir, instance):
    train(instance, WORSE, first=True)
    unscored = run(instance, [skin_classifier, production_skin_classifier], BETTER, raise_on_error=False)
    message = str(unscored.failure_data_for_node("production_skin_classifier").error)
    assert "model_metrics has not evaluated the current skin_classifier" in message
    assert store(data_dir).current().version == 1


def test_without_unseen_test_rows_of_both_classes_the_champion_stays(data_dir, instance):
    train(instance, GOOD, first=True)
    # A champion that trained on every bucket leaves no test colour it has not seen.
    manifest_file = data_dir / "blobs" / "champions" / "v0001" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["training_data"]["first_colour_bucket"] = 0
    manifest_file.write_text(json.dumps(manifest))
    decision = train(instance, BETTER)
    assert (decision["Decision"], decision["Champion version"]) == ("kept", "v0001")
    assert decision["Reason"] == (
        f"no honest comparison: the 0 of {len(small_split().test):,} test rows the champion did not train on "
        "do not hold both classes; champion stays"
    )


def test_a_champion_kept_without_a_comparison_is_still_checked_for_tampering(data_dir, instance):
    train(instance, GOOD, first=True)
    manifest_file = data_dir / "blobs" / "champions" / "v0001" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["training_data"]["first_colour_bucket"] = 0  # no test colour left to compare on
    manifest_file.write_text(json.dumps(manifest))
    model_file = data_dir / "blobs" / "champions" / "v0001" / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"!")
    result = run(instance, CANDIDATE_STEPS, BETTER, raise_on_error=False)
    assert not result.success
    assert "champions/v0001/model.skops has sha256" in failure_messages(result)
    assert history(data_dir) == [("promoted", 1)]


def test_a_rollback_repairs_a_damaged_pointer(data_dir, instance):
    train(instance, GOOD, first=True)
    pointer = data_dir / "blobs" / "champions" / "current.json"
    pointer.write_bytes(pointer.read_bytes()[:20])  # truncated (a partial copy, a bad hand edit)
    assert rollback(instance, 1).success
    reason = "rolled back from an unreadable champions/current.json to v0001: test"
    assert store(data_dir).current().version == 1 and store(data_dir).pointer().reason == reason
    assert history(data_dir) == [("promoted", 1), ("rolled_back", 1)]


def test_a_rollback_to_the_version_a_pointer_names_with_a_wrong_sha256_repairs_it(data_dir, instance):
    train(instance, GOOD, first=True)
    pointer_file = data_dir / "blobs" / "champions" / "current.json"
    pointer = json.loads(pointer_file.read_text())
    pointer["sha256"] = "0" * 64  # a hand edit: the pointer parses, and names v0001, but serves nothing
    pointer_file.write_text(json.dumps(pointer))
    with pytest.raises(UntrustedModelError, match="names v0001 with sha256 0000"):
        store(data_dir).current()
    assert rollback(instance, 1).success
    assert store(data_dir).current().version == 1
    assert store(data_dir).pointer().reason == "rolled back from a champions/current.json naming v0001 with another sha256 to v0001: test"
    assert history(data_dir) == [("promoted", 1), ("rolled_back", 1)]


def test_a_removed_pointer_stops_promotion_until_a_rollback_names_the_champion(data_dir, instance):
    train(instance, GOOD, first=True)
    (data_dir / "blobs" / "champions" / "current.json").unlink()

    # Read as "no champion yet", this WORSE candidate would have been promoted without comparing.
    result = run(instance, CANDIDATE_STEPS, WORSE, raise_on_error=False)
    assert not result.success
    assert "champions/current.json is missing, but champion versions v0001 are stored" in failure_messages(result)
    assert store(data_dir).versions() == [1] and history(data_dir) == [("promoted", 1)]

    assert rollback(instance, 1).success
    assert store(data_dir).pointer().reason == "rolled back from no champion to v0001: test"
    assert train(instance, WORSE)["Decision"] == "kept"


def test_tampered_champion_is_refused_by_rollback_and_by_the_next_promotion(data_dir, instance):
    train(instance, GOOD, first=True)
    model_file = data_dir / "blobs" / "champions" / "v0001" / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"tampered")

    result = rollback(instance, 1, raise_on_error=False)
    assert not result.success
    assert "champions/v0001/model.skops has sha256" in failure_messages(result)
    assert "changed outside skinseg; not loaded" in failure_messages(result)
    assert history(data_dir) == [("promoted", 1)]

    result = run(instance, CANDIDATE_STEPS, BETTER, raise_on_error=False)
    assert not result.success
    assert "champions/v0001/model.skops has sha256" in failure_messages(result)
    assert store(data_dir).versions() == [1]


def test_tampered_candidate_is_refused_by_the_model_io_manager(data_dir, instance):
    run(instance, [small_pixel_split, skin_classifier, model_metrics], GOOD)
    candidate = data_dir / "blobs" / "skin_classifier.skops"
    candidate.write_bytes(candidate.read_bytes()[:-1] + b"x")
    result = run(instance, [production_skin_classifier], raise_on_error=False)
    assert not result.success
    assert "was changed outside skinseg; not loaded" in failure_messages(result)
    candidate.unlink()
    gone = run(instance, [production_skin_classifier], raise_on_error=False)
    assert "skin_classifier.skops is missing, but Dagster recorded, when it was written, sha256" in failure_messages(gone)
    assert store(data_dir).current() is None


def test_lookup_table_and_segmented_photos_follow_the_champion(data_dir, instance):
    train(instance, WORSE, first=True)  # a small model: the table compiles in about a second
    result = run(instance, [skin_color_lut, segmented_sample_images])
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("lut_matches_champion", True)]
    lut = result.asset_materializations_for_node("skin_color_lut")[0].metadata
    assert lut["Champion version"].value == "v0001" and lut["Reused"].value is False
    images = result.asset_materializations_for_node("segmented_sample_images")[0].metadata
    assert images["Overlays"].value.startswith("![skin overlays](data:image/png;base64,")
    assert len(images["Overlays"].value) < 100_000
    assert 0 < images["Skin share: astronaut"].value < 1
    keys = store(data_dir).blob_store.list_keys("segmented_sample_images/v0001/")
    assert "segmented_sample_images/v0001/astronaut-mask.png" in keys
    assert "segmented_sample_images/v0001/astronaut-overlay.png" in keys

    again = run(instance, [skin_color_lut])  # same champion: the stored table is reused
    assert again.asset_materializations_for_node("skin_color_lut")[0].metadata["Reused"].value is True

    assert train(instance, GOOD)["Champion version"] == "v0002"  # a better model is promoted
    followed = run(instance, [skin_color_lut, segmented_sample_images])
    lut = followed.asset_materializations_for_node("skin_color_lut")[0].metadata
    assert lut["Champion version"].value == "v0002" and lut["Reused"].value is False
    assert [(c.check_name, c.passed) for c in followed.get_asset_check_evaluations()] == [("lut_matches_champion", True)]
    assert "segmented_sample_images/v0002/astronaut-mask.png" in store(data_dir).blob_store.list_keys("segmented_sample_images/v0002/")


# Every ListWarehouse's records, by its name (a resource is copied when a run configures it).
LIST_WAREHOUSE_RECORDS: dict[str, dict[str, list]] = {}


class ListWarehouse(Warehouse):
    """A warehouse that is not DuckDB at all, as a BigQuery one would not be: records in lists."""

    name: str

    @property
    def records(self) -> dict[str, list]:
        return LIST_WAREHOUSE_RECORDS.setdefault(self.name, {"metrics": [], "decisions": []})

    def table_name(self, table: str) -> str:
        return f"lists.{table}"

    def append_metrics(self, row, replacing_run_ids=()) -> int:
        kept = [r for r in self.records["metrics"] if r["run_id"] not in replacing_run_ids]
        self.records["metrics"][:] = [*kept, *row.to_dict("records")]
        return len(self.records["metrics"])

    def append_champion_decision(self, row: dict) -> int:
        self.records["decisions"].append(row)
        return len(self.records["decisions"])

    def promoted_sha256(self, version: int):
        promoted = [d["model_sha256"] for d in self.records["decisions"] if d["champion_version"] == version and d["action"] == "promoted"]
        return promoted[-1] if promoted else None

    def champion_history(self, limit: int = 10) -> pd.DataFrame:
        columns = ["decided_at", "action", "champion_version", "candidate_f1", "champion_f1", "reason"]
        return pd.DataFrame(self.records["decisions"][::-1][:limit], columns=columns)


class FailingDecisionsWarehouse(ListWarehouse):
    """A warehouse that cannot record champion decisions (a full disk, a lost connection)."""

    def append_champion_decision(self, row: dict) -> int:
        raise OSError("the history cannot be written")


def test_a_promotion_whose_history_row_cannot_be_written_does_not_serve(data_dir, instance):
    train(instance, WORSE, first=True)
    failing = FailingDecisionsWarehouse(name=str(data_dir))
    result = run(instance, CANDIDATE_STEPS, GOOD, raise_on_error=False, warehouse=failing)
    assert not result.success and "the history cannot be written" in failure_messages(result)
    champions = store(data_dir)
    # The better candidate is stored as v0002 but does not serve: its sha256 is in no history.
    assert champions.versions() == [1, 2] and champions.current().version == 1
    assert history(data_dir) == [("promoted", 1)]
    decision = train(instance, GOOD)  # the next run decides again, and records before it serves
    assert (decision["Decision"], decision["Champion version"]) == ("promoted", "v0003")
    assert store(data_dir).current().version == 3 and history(data_dir) == [("promoted", 1), ("promoted", 3)]


def test_the_asset_code_keeps_its_histories_in_whatever_warehouse_resource_it_is_given(data_dir, instance):
    warehouse = ListWarehouse(name=str(data_dir))
    first = run(instance, [small_pixel_split, *CANDIDATE_STEPS], GOOD, warehouse=warehouse)
    assert first.asset_materializations_for_node("model_metrics")[0].metadata["History table"].value == "lists.model_metrics_history"
    run(instance, CANDIDATE_STEPS, BETTER, warehouse=warehouse)
    served = run(instance, [skin_color_lut], warehouse=warehouse)  # loads the champion checked against the history
    assert [(c.check_name, c.passed) for c in served.get_asset_check_evaluations()] == [("lut_matches_champion", True)]
    assert rollback(instance, 1, warehouse=warehouse).success

    records = warehouse.records
    assert [(d["action"], d["champion_version"]) for d in records["decisions"]] == [("promoted", 1), ("promoted", 2), ("rolled_back", 1)]
    assert len(records["metrics"]) == 2 and {"run_id", "f1", "model_sha256"} <= set(records["metrics"][0])
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:  # the frames only
        tables = {name for (name,) in connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"train_pixels", "test_pixels"} <= tables and not tables & {CHAMPION_HISTORY, METRICS_HISTORY}


def test_a_table_that_disagrees_with_the_champion_fails_its_check_naming_the_colours(data_dir, instance, monkeypatch):
    from skinseg_assets.assets import serving

    train(instance, WORSE, first=True)
    champions = store(data_dir)
    _, other_models_table = tree_and_lut(3)
    monkeypatch.setattr(serving, "compile_lut", lambda model: other_models_table)  # a compiler that gets it wrong
    result = run(instance, [skin_color_lut], raise_on_error=False)
    (check,) = result.get_asset_check_evaluations()
    metadata = {key: value.value for key, value in check.metadata.items()}
    assert not check.passed and metadata["Disagreements"] > 0
    assert metadata["Colours checked"] == LUT_CHECK_COLOURS == 200_000  # as the README says
    # The seed draws the same colours again: each named colour is one the two really disagree on.
    colours = colours_of_keys(np.random.default_rng(metadata["Random seed"]).integers(0, COLOURS, LUT_CHECK_COLOURS, dtype=np.uint32))
    champion_model = champions.load_model(champions.current())
    disagreeing = colours[lut_is_skin(other_models_table.table, colours) != model_is_skin(champion_model, colours)]
    assert len(disagreeing) == metadata["Disagreements"]
    assert metadata["Disagreeing colours (B, G, R)"] == ", ".join(f"({b}, {g}, {r})" for b, g, r in disagreeing[:10].tolist())


def test_a_stored_table_that_disagrees_with_the_champion_is_compiled_again_not_reused(data_dir, instance):
    train(instance, WORSE, first=True)
    champions = store(data_dir)
    _, other_models_table = tree_and_lut(3)
    champions.save_lut(champions.current(), other_models_table)  # intact, but not this champion's
    result = run(instance, [skin_color_lut])
    assert result.asset_materializations_for_node("skin_color_lut")[0].metadata["Reused"].value is False
    assert [(c.check_name, c.passed) for c in result.get_asset_check_evaluations()] == [("lut_matches_champion", True)]
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(message.startswith("recompiling: the stored table disagrees with v0001") for message in messages)
    table = champions.load_lut(champions.current())
    colours = colours_of_keys(np.arange(0, COLOURS, 97, dtype=np.uint32))
    assert (lut_is_skin(table, colours) == model_is_skin(champions.load_model(champions.current()), colours)).all()


def test_jobs_wire_the_champion_into_training_and_the_table_into_serving():
    from skinseg_assets import defs

    def keys(job_name):
        job = defs.resolve_job_def(job_name)
        return {key.to_user_string() for key in job.asset_layer.executable_asset_keys}

    assert {"model_metrics", "production_skin_classifier"} <= keys("training_job")
    assert "skin_color_lut" not in keys("training_job")
    assert keys("serving_job") == {"skin_color_lut", "segmented_sample_images"}
    rollback_job = defs.resolve_job_def("rollback_champion_job")
    assert rollback_job.description and "rollback_champion" in [node.name for node in rollback_job.nodes]


@pytest.mark.parametrize(
    "promoted_at, shown",
    [
        ("2026-12-03T10:00:00+00:00", dg.MetadataValue.timestamp(1796292000.0)),
        ("2026-12-03T10:00:00", "2026-12-03T10:00:00"),  # no zone: which moment it was is unknown
        ("yesterday", "yesterday"),
    ],
    ids=["iso-with-zone", "iso-without-zone", "not-iso"],
)
def test_a_promotion_time_is_a_timestamp_only_when_it_names_its_zone(promoted_at, shown):
    from types import SimpleNamespace

    assert promoted_at_metadata(SimpleNamespace(promoted_at=promoted_at)) == shown
