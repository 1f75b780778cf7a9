"""training_job's work as plain function calls in one process: no Dagster.

It does what the job does for the bundled batch, in the same order: read, parse, validate (and
check the Pandera schema), split by colour (and check no colour is on both sides), report drift,
fit, evaluate, draw the two plots, check the F1 floor, append the metrics history, compare with
the stored champion (if any) and keep the better with its manifest, and store the frames in a
DuckDB file and the models as skops files and the plots as PNG files under --store.
Run alone it prints the time of each stage as JSON; benchmarks/bench_orchestration.py times it as
a whole command beside `dagster job execute`.
"""

import argparse
import json
import sys
import time
from pathlib import Path


def main(store: Path, source: Path | None) -> dict[str, float]:
    started = time.perf_counter()
    import duckdb
    import skops.io as sio

    from skinseg_assets.pixels.champion import Contender, data_identity, decide_promotion, training_identity
    from skinseg_assets.pixels.drift import drift_report, other_batches
    from skinseg_assets.pixels.schema import ValidatedSkinPixels
    from skinseg_assets.pixels.batches import BUNDLED_BATCH
    from skinseg_assets.pixels.metrics import MIN_F1, Provenance, evaluate_classifier, metrics_row
    from skinseg_assets.pixels.model import DEFAULT_ESTIMATOR, DEFAULT_HYPERPARAMETERS, build_estimator, fit_classifier
    from skinseg_assets.pixels.plots import confusion_matrix_png, roc_curve_png
    from skinseg_assets.pixels.rules import validate_pixels
    from skinseg_assets.pixels.source import PixelFile, parse_pixel_file, read_bundled_uci
    from skinseg_assets.pixels.split import split_by_colour

    stages = {"imports": time.perf_counter() - started}

    def stage(name, work):
        began = time.perf_counter()
        result = work()
        stages[name] = time.perf_counter() - began
        return result

    store.mkdir(parents=True, exist_ok=True)
    database = duckdb.connect(str(store / "warehouse.duckdb"))

    def save_frame(name, frame):
        database.register("frame", frame)
        database.execute(f"create or replace table {name} as select * from frame")
        database.unregister("frame")

    # A configured file is read as the job reads a configured source_uri: its bytes, as they are.
    pixel_file = stage("read", lambda: PixelFile(source=str(source), content=source.read_bytes()) if source else read_bundled_uci())
    parsed = stage("parse", lambda: parse_pixel_file(pixel_file))
    outcome = stage("validate", lambda: validate_pixels(parsed.raw, pixel_file.source))
    validated = outcome.validated.assign(batch=BUNDLED_BATCH)
    stage("schema check", lambda: ValidatedSkinPixels.validate(validated, lazy=True))
    split = stage("split", lambda: split_by_colour(validated))
    stage("overlap check", split.colour_overlap)
    stage(
        "drift",
        lambda: drift_report(validated, other_batches(split.train, BUNDLED_BATCH), other_batches(split.test, BUNDLED_BATCH)),
    )
    model = build_estimator(DEFAULT_ESTIMATOR, **DEFAULT_HYPERPARAMETERS)
    fitted = stage("fit", lambda: fit_classifier(model, split.train))
    metrics = stage("evaluate", lambda: evaluate_classifier(fitted.model, split.test))
    stage("evaluate each colour once", lambda: evaluate_classifier(fitted.model, split.test.drop_duplicates(["B", "G", "R", "is_skin"])))
    plots = stage("plots", lambda: {"confusion-matrix": confusion_matrix_png(metrics), "roc-curve": roc_curve_png(metrics)})
    assert metrics.f1 >= MIN_F1, "the F1 floor"

    def append_history():
        provenance = Provenance(parameters=DEFAULT_HYPERPARAMETERS, training_data_sha256=data_identity(split.train)["sha256"])
        database.register("row", metrics_row(metrics, fitted.model, len(split.train), "plain", provenance))
        database.execute("create table if not exists model_metrics_history as select * from row limit 0")
        database.execute("insert into model_metrics_history by name select * from row")
        database.unregister("row")

    def champion_challenger():
        champion_file = store / "champion.skops"
        champion = None
        if champion_file.exists():
            data = champion_file.read_bytes()
            champion_model = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
            champion = Contender(evaluate_classifier(champion_model, split.test).f1, len(split.train))
        decision = decide_promotion(Contender(metrics.f1, len(split.train)), champion)
        if decision.promote:
            champion_file.write_bytes(sio.dumps(fitted.model))
            manifest = {"training_data": training_identity(split.train), "test_data": data_identity(split.test), "f1": metrics.f1}
            (store / "champion.json").write_text(json.dumps(manifest))

    def store_everything():
        for name, frame in (
            ("raw_skin_pixels", parsed.raw),
            ("validated_skin_pixels", validated),
            ("rejected_skin_pixels", outcome.rejected),
            ("train_pixels", split.train),
            ("test_pixels", split.test),
        ):
            save_frame(name, frame)
        (store / "skin_classifier.skops").write_bytes(sio.dumps(fitted.model))
        (store / "model_metrics").mkdir(exist_ok=True)
        for name, png in plots.items():
            (store / "model_metrics" / f"{name}.png").write_bytes(png)

    stage("store", store_everything)
    stage("history", append_history)
    stage("champion", champion_challenger)
    database.close()
    stages["total"] = time.perf_counter() - started
    stages["work"] = stages["total"] - stages["imports"]
    stages["predict"] = metrics.predict_seconds
    stages["f1"] = metrics.f1
    stages["train_rows"] = len(split.train)
    stages["test_rows"] = len(split.test)
    return stages


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="folder for the DuckDB file and the models")
    parser.add_argument("--source", type=Path, help="a pixel file to read instead of the bundled one")
    arguments = parser.parse_args()
    json.dump(main(arguments.store, arguments.source), sys.stdout)
