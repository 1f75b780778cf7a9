"""training_job's work as plain function calls in one process: no Dagster, no storage.

Run alone it prints the time of each stage; benchmarks/bench_orchestration.py times it as a
whole command beside `dagster job execute`.
"""

import json
import sys
import time


def main() -> dict[str, float]:
    started = time.perf_counter()
    from skinseg_assets.pixels.metrics import evaluate_classifier
    from skinseg_assets.pixels.model import build_estimator, fit_classifier
    from skinseg_assets.pixels.plots import confusion_matrix_png, roc_curve_png
    from skinseg_assets.pixels.rules import validate_pixels
    from skinseg_assets.pixels.source import parse_pixel_file, read_bundled_uci
    from skinseg_assets.pixels.split import split_by_colour

    stages = {"imports": time.perf_counter() - started}

    def stage(name, work):
        began = time.perf_counter()
        result = work()
        stages[name] = time.perf_counter() - began
        return result

    pixel_file = stage("read", read_bundled_uci)
    parsed = stage("parse", lambda: parse_pixel_file(pixel_file))
    outcome = stage("validate", lambda: validate_pixels(parsed.raw, pixel_file.source))
    split = stage("split", lambda: split_by_colour(outcome.validated, 0.2))
    model = build_estimator("hist_gradient_boosting", max_iter=300, learning_rate=0.2, max_leaf_nodes=63, random_state=0)
    fitted = stage("fit", lambda: fit_classifier(model, split.train))
    metrics = stage("evaluate", lambda: evaluate_classifier(fitted.model, split.test))
    stage("plots", lambda: (confusion_matrix_png(metrics), roc_curve_png(metrics)))
    stages["total"] = time.perf_counter() - started
    stages["predict"] = metrics.predict_seconds
    stages["f1"] = metrics.f1
    return stages


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
