"""Serving assets: the production champion, its colour lookup table, and segmented sample photos.

The decision logic lives in `pixels.champion`, the table in `pixels.lut`, the images in
`pixels.images`, the versions in `resources.champion_store`; these assets only wire them.
"""

import secrets
from datetime import datetime, timezone

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from skinseg_assets.assets.metadata import markdown_image, markdown_table
from skinseg_assets.assets.automation import EAGER_UNLESS_BLOCKED
from skinseg_assets.assets.training import require_a_candidate_above_the_floor, require_candidate_fitted_on
from skinseg_assets.pixels.champion import (
    Contender,
    compare_with_champion,
    data_identity,
    decide_promotion,
    training_identity,
)
from skinseg_assets.pixels.images import SAMPLE_IMAGES, encode_png, overlay, skin_share, thumbnail_strip_png
from skinseg_assets.pixels.colours import colours_of_keys
from skinseg_assets.pixels.lut import COLOURS, compile_lut, lut_is_skin, segment_rgb
from skinseg_assets.pixels.metrics import ClassifierMetrics, evaluate_classifier
from skinseg_assets.pixels.model import model_is_skin
from skinseg_assets.resources import DUCKDB_SCHEMA
from skinseg_assets.resources.blob_store import BlobStore, uri_metadata
from skinseg_assets.resources.champion_store import (
    ChampionManifest,
    ChampionNotFoundError,
    ChampionStore,
    code_version,
    manifest_key,
    version_name,
)
from skinseg_assets.resources.model_io_manager import UntrustedModelError, dumps_model

SERVING = "serving"
CHAMPION_HISTORY_TABLE = f"{DUCKDB_SCHEMA}.champion_history"
LUT_CHECK_COLOURS = 200_000
LUT_CHECK_EXAMPLES = 10  # disagreeing colours named in a failed check

# Champion history: one row per decision (promoted, kept) and per rollback.


def _ensure_history(connection) -> None:
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {DUCKDB_SCHEMA}")
    connection.execute(
        f"""CREATE TABLE IF NOT EXISTS {CHAMPION_HISTORY_TABLE} (
            decided_at TIMESTAMP, run_id VARCHAR, action VARCHAR, champion_version INTEGER,
            model_sha256 VARCHAR, candidate_f1 DOUBLE, champion_f1 DOUBLE,
            training_rows BIGINT, test_rows BIGINT, reason VARCHAR)"""
    )


def append_champion_history(
    warehouse: DuckDBResource,
    *,
    run_id: str,
    action: str,
    champion: ChampionManifest,
    reason: str,
    candidate_f1: float | None = None,
    champion_f1: float | None = None,
    test_rows: int | None = None,
) -> int:
    """Record a decision; `champion` is the version serving after it. Returns the history's length."""
    with warehouse.get_connection() as connection:
        _ensure_history(connection)
        connection.execute(
            f"INSERT INTO {CHAMPION_HISTORY_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                datetime.now(timezone.utc).replace(tzinfo=None),
                run_id,
                action,
                champion.version,
                champion.sha256,
                candidate_f1,
                champion_f1,
                champion.training_data.get("rows"),
                test_rows,
                reason,
            ],
        )
        return connection.execute(f"SELECT count(*) FROM {CHAMPION_HISTORY_TABLE}").fetchone()[0]


def recorded_champion_sha256(warehouse: DuckDBResource, version: int) -> str | None:
    """The sha256 the history recorded when `version` was promoted (None if it has no record)."""
    with warehouse.get_connection() as connection:
        _ensure_history(connection)
        row = connection.execute(
            f"SELECT model_sha256 FROM {CHAMPION_HISTORY_TABLE} WHERE champion_version = ? AND action = 'promoted' "
            "ORDER BY decided_at DESC LIMIT 1",
            [version],
        ).fetchone()
    return row[0] if row else None


def champion_history(warehouse: DuckDBResource, limit: int = 10) -> pd.DataFrame:
    """The latest decisions, newest first."""
    with warehouse.get_connection() as connection:
        _ensure_history(connection)
        return connection.execute(
            f"SELECT decided_at, action, champion_version, candidate_f1, champion_f1, reason "
            f"FROM {CHAMPION_HISTORY_TABLE} ORDER BY decided_at DESC LIMIT ?",
            [limit],
        ).df()


def load_verified_champion(store: ChampionStore, warehouse: DuckDBResource, champion: ChampionManifest):
    """The champion's model, checked against its manifest, the pointer and the promotion history."""
    return store.load_model(champion, expected_sha256=recorded_champion_sha256(warehouse, champion.version))


def history_metadata(warehouse: DuckDBResource) -> dg.MarkdownMetadataValue:
    history = champion_history(warehouse)
    for column in ("candidate_f1", "champion_f1"):
        history[column] = history[column].map(lambda value: "" if pd.isna(value) else f"{value:.6f}")
    history["champion_version"] = history["champion_version"].map(version_name)
    return markdown_table(history)


def _plain_parameters(model) -> dict:
    """The estimator's hyperparameters that JSON can hold (all of them, for scikit-learn's own)."""
    return {name: value for name, value in model.get_params().items() if isinstance(value, (int, float, str, bool, type(None)))}


@dg.asset(
    group_name=SERVING,
    kinds={"scikitlearn"},
    automation_condition=EAGER_UNLESS_BLOCKED,
)
def production_skin_classifier(
    context: dg.AssetExecutionContext,
    skin_classifier,
    model_metrics: pd.DataFrame,
    train_pixels: pd.DataFrame,
    test_pixels: pd.DataFrame,
    blob_store: BlobStore,
    warehouse: DuckDBResource,
) -> dg.MaterializeResult:
    """The champion: the model that serves, replaced by a candidate only if it is at least as good on the current test split."""
    training = training_identity(train_pixels)
    require_candidate_fitted_on(context.instance, training)
    require_a_candidate_above_the_floor(context.instance)
    store = ChampionStore(blob_store)
    current = store.current()
    # Scored here, not taken from model_metrics: what is published is exactly what was scored, even
    # if another run replaced the stored model or split since model_metrics ran.
    candidate_scores = evaluate_classifier(skin_classifier, test_pixels)
    comparison = compare_with_champion(
        skin_classifier,
        candidate_scores,
        test_pixels,
        current.training_data if current else None,
        lambda: load_verified_champion(store, warehouse, current),
    )
    champion_contender = None
    if current is not None:
        champion_contender = Contender(comparison.champion_f1, int(current.training_data.get("rows", 0)))
    decision = decide_promotion(
        Contender(comparison.candidate_f1, len(train_pixels)), champion_contender, comparison.described
    )
    if decision.promote:
        champion = store.publish(
            dumps_model(skin_classifier),
            estimator=type(skin_classifier).__name__,
            parameters=_plain_parameters(skin_classifier),
            test_metrics={name: round(value, 6) for name, value in candidate_scores.scores().items()},
            training_data=training,
            test_data=data_identity(test_pixels),
            code_version=code_version(),
            reason=decision.reason,
            run_id=context.run.run_id,
        )
    else:
        champion = current
    action = "promoted" if decision.promote else "kept"
    context.log.info(f"{action} {champion.name}: {decision.reason}")
    append_champion_history(
        warehouse,
        run_id=context.run.run_id,
        action=action,
        champion=champion,
        reason=decision.reason,
        candidate_f1=comparison.candidate_f1,
        champion_f1=comparison.champion_f1,
        test_rows=len(comparison.rows),  # the rows both F1s are on
    )
    return dg.MaterializeResult(
        metadata={
            "Decision": action,
            "Reason": decision.reason,
            "Champion version": champion.name,
            "Candidate F1 (current test split)": dg.MetadataValue.float(round(candidate_scores.f1, 6)),
            "Compared on": comparison.described if current else "no champion",
            "Candidate F1 (compared rows)": f1_metadata(comparison.candidate, "not compared"),
            "Champion F1 before (compared rows)": f1_metadata(comparison.champion, "no champion"),
            "Candidate F1 in model_metrics": dg.MetadataValue.float(round(float(model_metrics["f1"].iat[0]), 6)),
            "Champion sha256": champion.sha256,
            "Champion promoted at": champion.promoted_at,
            "Model": uri_metadata(blob_store.uri(champion.model_key)),
            "Manifest": uri_metadata(blob_store.uri(manifest_key(champion.version))),
            "Versions": dg.MetadataValue.int(len(store.versions())),
            "Test rows": dg.MetadataValue.int(len(test_pixels)),
            "Promotion history": history_metadata(warehouse),
            "History table": CHAMPION_HISTORY_TABLE,
        },
        data_version=dg.DataVersion(f"{champion.name}-{champion.sha256[:16]}"),
    )


def f1_metadata(scores: ClassifierMetrics | None, missing: str) -> dg.MetadataValue | str:
    return dg.MetadataValue.float(round(scores.f1, 6)) if scores is not None else missing


def _serving_champion(store: ChampionStore) -> ChampionManifest:
    champion = store.current()
    if champion is None:
        raise ChampionNotFoundError("no champion has been promoted yet: materialize production_skin_classifier first")
    return champion


@dg.asset(
    group_name=SERVING,
    deps=[production_skin_classifier],
    kinds={"numpy"},
    automation_condition=EAGER_UNLESS_BLOCKED,
)
def skin_color_lut(context: dg.AssetExecutionContext, blob_store: BlobStore, warehouse: DuckDBResource) -> dg.MaterializeResult:
    """The serving champion compiled into a 256x256x256 table of skin decisions, one per (B, G, R) colour."""
    store = ChampionStore(blob_store)
    champion = _serving_champion(store)
    verified = None
    try:
        verified = store.load_lut_with_manifest(champion, packed=True)
    except (UntrustedModelError, ValueError) as error:  # altered, or written in an older format
        context.log.warning(f"recompiling: {error}")
    reused = verified is not None
    if reused:
        lut = verified[0]
        context.log.info(f"{champion.name} already has a verified lookup table; reused")
    else:
        compiled = compile_lut(load_verified_champion(store, warehouse, champion))
        lut = store.save_lut(champion, compiled)
    return dg.MaterializeResult(
        metadata={
            "Champion version": champion.name,
            "Champion sha256": champion.sha256,
            "Lookup table": uri_metadata(blob_store.uri(lut.lut_key)),
            "sha256": lut.sha256,
            "Stored size (bytes)": dg.MetadataValue.int(lut.size_bytes),
            "Skin colours": dg.MetadataValue.int(lut.skin_colours),
            "Skin share of all colours": dg.MetadataValue.float(round(lut.skin_colours / COLOURS, 6)),
            "Compile time (s)": dg.MetadataValue.float(lut.compile_seconds),
            "Reused": reused,
            "Index": lut.index,
        },
        data_version=dg.DataVersion(f"{champion.name}-{lut.sha256[:16]}"),
    )


@dg.asset_check(
    asset=skin_color_lut,
    blocking=True,
    description=f"The table gives the champion model's own decision on {LUT_CHECK_COLOURS:,} random colours.",
)
def lut_matches_champion(blob_store: BlobStore, warehouse: DuckDBResource) -> dg.AssetCheckResult:
    store = ChampionStore(blob_store)
    champion = _serving_champion(store)
    table = store.load_lut(champion, packed=True)
    if table is None:
        return dg.AssetCheckResult(passed=False, metadata={"Problem": f"{champion.name} has no lookup table"})
    # Other colours at each check; the seed in the metadata draws the same ones again.
    seed = secrets.randbits(32)
    colours = colours_of_keys(np.random.default_rng(seed).integers(0, COLOURS, LUT_CHECK_COLOURS, dtype=np.uint32))
    agree = lut_is_skin(table, colours) == model_is_skin(load_verified_champion(store, warehouse, champion), colours)
    metadata = {
        "Champion version": champion.name,
        "Colours checked": dg.MetadataValue.int(len(colours)),
        "Random seed": dg.MetadataValue.int(seed),
        "Disagreements": dg.MetadataValue.int(int((~agree).sum())),
    }
    if not agree.all():
        examples = colours[~agree][:LUT_CHECK_EXAMPLES].tolist()
        metadata["Disagreeing colours (B, G, R)"] = ", ".join(f"({b}, {g}, {r})" for b, g, r in examples)
    return dg.AssetCheckResult(passed=bool(agree.all()), metadata=metadata)


@dg.asset(
    group_name=SERVING,
    deps=[skin_color_lut],
    kinds={"pillow"},
    automation_condition=EAGER_UNLESS_BLOCKED,
)
def segmented_sample_images(context: dg.AssetExecutionContext, blob_store: BlobStore) -> dg.MaterializeResult:
    """Bundled sample photographs segmented by the champion's lookup table: masks and overlays (PNG)."""
    store = ChampionStore(blob_store)
    champion = _serving_champion(store)
    table = store.load_lut(champion, packed=True)
    if table is None:
        raise ChampionNotFoundError(f"{champion.name} has no lookup table: materialize skin_color_lut first")
    rows, overlays = [], []
    for sample in SAMPLE_IMAGES:
        image = sample.load()
        mask = segment_rgb(table, image)
        tinted = overlay(image, mask)
        prefix = f"segmented_sample_images/{champion.name}/{sample.name}"
        mask_uri = blob_store.write_bytes(f"{prefix}-mask.png", encode_png(mask), content_type="image/png")
        overlay_uri = blob_store.write_bytes(f"{prefix}-overlay.png", encode_png(tinted), content_type="image/png")
        overlays.append(tinted)
        rows.append(
            {
                "image": sample.name,
                "size": f"{image.shape[1]}x{image.shape[0]}",
                "skin share": round(skin_share(mask), 4),
                "source": sample.credit,
                "mask": mask_uri,
                "overlay": overlay_uri,
            }
        )
    return dg.MaterializeResult(
        metadata={
            "Champion version": champion.name,
            "Overlays": markdown_image(thumbnail_strip_png(overlays), "skin overlays"),
            "Images": markdown_table(pd.DataFrame(rows)),
            **{f"Skin share: {row['image']}": dg.MetadataValue.float(row["skin share"]) for row in rows},
        }
    )


serving_checks = [lut_matches_champion]
