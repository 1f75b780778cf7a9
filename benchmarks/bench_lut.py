"""The lookup-table scorer vs. the model's own predict, side by side on the same pixels.

The model is the one training_job trains (HistGradientBoosting with SkinClassifierConfig's
defaults, fitted on the train side of the bundled UCI file); `--from-store` uses the serving
champion of SKINSEG_DATA_DIR's blob store instead. Both scorers get the same 1,000,000 random
colours and must give the same decisions; then a 12-megapixel photo (the astronaut, resized to
4000x3000) is segmented through the table.

    .venv/bin/python benchmarks/bench_lut.py [--pixels 1000000] [--from-store]

Writes its section of BENCHMARKS.md (between the `bench_lut` markers).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import describe_machine, now, write_section  # noqa: E402

from skinseg_assets.assets.classifier_config import SkinClassifierConfig  # noqa: E402
from skinseg_assets.pixels.lut import (  # noqa: E402
    COLOURS,
    compile_lut,
    lut_is_skin,
    pack_table,
    segment_rgb,
    segment_rgb_with_model,
)
from skinseg_assets.pixels.colours import colour_index, colours_of_keys  # noqa: E402
from skinseg_assets.pixels.model import SKIN_THRESHOLD, build_estimator, fit_classifier, model_is_skin  # noqa: E402
from skinseg_assets.pixels.split import split_by_colour  # noqa: E402
from skinseg_assets_tests.helpers import bundled_pixels  # noqa: E402


def training_job_model():
    config = SkinClassifierConfig()
    model = build_estimator(config.estimator.kind, **config.estimator.hyperparameters())
    fitted = fit_classifier(model, split_by_colour(bundled_pixels()).train).model
    return fitted, f"{type(model).__name__}, trained here on the bundled train split"


def champion_model():
    from skinseg_assets.resources.champion_store import ChampionStore
    from skinseg_assets.service.scoring import blob_store_from_environment

    store = ChampionStore(blob_store_from_environment())
    champion = store.current()
    if champion is None:
        raise SystemExit("no champion in the blob store: run training_job, or leave out --from-store")
    return store.load_model(champion), f"{champion.estimator}, champion {champion.name}"


def timed(function, repeats: int) -> tuple[float, object]:
    seconds, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds: model once, table 7 times")
    parser.add_argument("--from-store", action="store_true", help="benchmark the serving champion instead")
    args = parser.parse_args()

    model, model_name = champion_model() if args.from_store else training_job_model()
    print(f"model: {model_name}")
    compiled = compile_lut(model)
    print(f"compiled the table in {compiled.compile_seconds:.1f} s")
    table = compiled.table

    colours = colours_of_keys(np.random.default_rng(7).integers(0, COLOURS, args.pixels, dtype=np.uint32))
    lut_is_skin(table, colours)  # page the table in
    bits = pack_table(table)  # the form the service scores with: 2 MiB instead of 16 MiB
    # Interleaved, so that both sides see the same load on a shared machine.
    model_runs, lut_runs, bool_runs = [], [], []
    for _ in range(args.rounds):
        model_runs.append(timed(lambda: model_is_skin(model, colours), repeats=1))
        lut_runs.append(timed(lambda: lut_is_skin(bits, colours), repeats=7))
        bool_runs.append(timed(lambda: lut_is_skin(table, colours), repeats=7))
    model_seconds, model_decisions = statistics.median(run[0] for run in model_runs), model_runs[0][1]
    lut_seconds, lut_decisions = statistics.median(run[0] for run in lut_runs), lut_runs[0][1]
    bool_seconds, bool_decisions = statistics.median(run[0] for run in bool_runs), bool_runs[0][1]
    disagreements = int((model_decisions != lut_decisions).sum() + (model_decisions != bool_decisions).sum())
    speedup = model_seconds / lut_seconds
    print(f"model {model_seconds:.3f} s, table {lut_seconds * 1000:.2f} ms (bool {bool_seconds * 1000:.2f} ms): "
          f"{speedup:,.0f}x; {disagreements} disagreements")

    from PIL import Image
    from skimage import data

    photo = np.asarray(Image.fromarray(data.astronaut()).resize((4000, 3000), Image.Resampling.BILINEAR))
    image_seconds, mask = timed(lambda: segment_rgb(bits, photo), repeats=7)
    fallback_seconds, fallback_mask = timed(lambda: segment_rgb_with_model(model, photo), repeats=1)
    assert (mask == fallback_mask).all(), "table and model segment the photo differently"
    megapixels = photo.shape[0] * photo.shape[1] / 1e6
    distinct = len(np.unique(colour_index(photo[..., 2], photo[..., 1], photo[..., 0])))
    print(f"12 MP photo: table {image_seconds * 1000:.0f} ms, model on distinct colours {fallback_seconds:.2f} s")

    body = f"""## Lookup-table scorer (`skin_color_lut`)

`benchmarks/bench_lut.py{' --from-store' if args.from_store else ''}`, {now()}, on {describe_machine()}.
Model: {model_name}. Table: 256x256x256 decisions, compiled in {compiled.compile_seconds:.1f} s
({compiled.skin_colours:,} skin colours).

| job | model `predict_proba` > {SKIN_THRESHOLD} | lookup table (packed bits, 2 MiB) | speed-up |
| --- | --- | --- | --- |
| {args.pixels:,} random (B, G, R) pixels | {model_seconds:.3f} s ({args.pixels / model_seconds / 1e6:.2f} M px/s) | {lut_seconds * 1000:.2f} ms ({args.pixels / lut_seconds / 1e6:.0f} M px/s) | **{speedup:,.0f}x** |
| segment a {photo.shape[1]}x{photo.shape[0]} ({megapixels:.0f} MP) RGB photo | {fallback_seconds:.2f} s (model on its {distinct:,} distinct colours) | {image_seconds * 1000:.0f} ms ({megapixels / image_seconds:.0f} M px/s) | {fallback_seconds / image_seconds:,.0f}x |

The same table unpacked (bool, 16 MiB) takes {bool_seconds * 1000:.2f} ms for the random pixels
({model_seconds / bool_seconds:,.0f}x). Decisions: table and model disagree on {disagreements} of the
{args.pixels:,} pixels and on none of the photo's pixels. Pixels: {args.rounds} interleaved rounds (model
once, each table form 7 times), medians of the rounds' medians; photo: median of 7 runs. The machine is
shared with other work: the load average above is part of the result.
"""
    write_section("bench_lut", body)
    print(body)


if __name__ == "__main__":
    main()
