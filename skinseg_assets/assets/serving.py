"""Serving assets: the production champion, its colour lookup table, and segmented sample photos.

The decision logic lives in `pixels.champion`, the table in `pixels.lut`, the images in
`pixels.images`, the versions in `resources.champion_store`; these assets only wire them.
"""

import secrets
from datetime import datetime

import dagster as dg
import pandas as pd

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
from skinseg_assets.pixels.lut import COLOURS, compile_lut, disagreeing_colours, random_colours, segment_rgb
from skinseg_assets.pixels.metrics import ClassifierMetrics, evaluate_classifier
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
from skinseg_assets.resources.warehouse import CHAMPION_HISTORY, Warehouse

SERVING = "serving"
# Colours a stored table is compared with the champion on before it is reused (the blocking
# lut_matches_champion check then draws its own 200,000).
LUT_REUSE_CHECK_COLOURS = 20_000


def load_verified_champion(store: ChampionStore, warehouse: Warehouse, champion: ChampionManifest):
    """The champion's model, checked against its manifest, the pointer and the promotion history."""
    return store.load_model(champion, expected_sha256=warehouse.promoted_sha256(champion.version))


def history_metadata(warehouse: Warehouse) -> dg.MarkdownMetadataValue:
    history = warehouse.champion_history()
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
    warehouse: Warehouse,
) -> dg.MaterializeResult:
    """The champion: the model that serves, replaced by a candidate only if it is at least as good on the current test split."""
    training = training_identity(train_pixels)
    require_candidate_fitted_on(context.instance, training)
    floor = require_a_candidate_above_the_floor(context.instance)
    store = ChampionStore(blob_store)
    current = store.current()
    # Scored here, not taken from model_metrics: what is published is exactly what was scored, even
    # if another run replaced the stored model or split since model_metrics ran.
    candidate_scores = evaluate_classifier(skin_classifier, test_pixels)
    if candidate_scores.f1 < floor:
        # The split changed since model_metrics passed it (say, batches added test colours and only
        # the split and this asset were materialized): the floor holds on the rows scored here too.
        raise dg.Failure(
            f"skin_classifier's F1 on the current test split is {candidate_scores.f1:.6f}, below the floor {floor} "
            f"that model_metrics applied on an earlier split: not promoted; materialize model_metrics again"
        )
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
        # Stored, recorded in the history, and only then served: a version serves only once the
        # history (outside the bucket) holds its sha256, even if a step here fails.
        champion = store.store_version(
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
    warehouse.record_champion_decision(
        run_id=context.run.run_id,
        action=action,
        champion=champion,
        reason=decision.reason,
        candidate_f1=comparison.candidate_f1,
        champion_f1=comparison.champion_f1,
        test_rows=len(comparison.rows),  # the rows both F1s are on
    )
    if decision.promote:
        store.point_to(champion, action="promoted", reason=champion.reason, run_id=champion.run_id)
    context.log.info(f"{action} {champion.name}: {decision.reason}")
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
            "Champion promoted at": promoted_at_metadata(champion),
            "Model": uri_metadata(blob_store.uri(champion.model_key)),
            "Manifest": uri_metadata(blob_store.uri(manifest_key(champion.version))),
            "Versions": dg.MetadataValue.int(len(store.versions())),
            "Test rows": dg.MetadataValue.int(len(test_pixels)),
            "Promotion history": history_metadata(warehouse),
            "History table": warehouse.table_name(CHAMPION_HISTORY),
        },
        data_version=dg.DataVersion(f"{champion.name}-{champion.sha256[:16]}"),
    )


def promoted_at_metadata(champion: ChampionManifest) -> dg.MetadataValue | str:
    """When the champion was promoted, shown in the viewer's time zone; as written if it is not an
    ISO 8601 time with its zone (a manifest edited by hand, say)."""
    try:
        promoted_at = datetime.fromisoformat(champion.promoted_at)
    except (TypeError, ValueError):
        return champion.promoted_at
    return dg.MetadataValue.timestamp(promoted_at) if promoted_at.tzinfo is not None else champion.promoted_at


def f1_metadata(scores: ClassifierMetrics | None, missing: str) -> dg.MetadataValue | str:
    return dg.MetadataValue.float(round(scores.f1, 6)) if scores is not None else missing


def serving_champion(store: ChampionStore) -> ChampionManifest:
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
def skin_color_lut(context: dg.AssetExecutionContext, blob_store: BlobStore, warehouse: Warehouse) -> dg.MaterializeResult:
    """The serving champion compiled into a 256x256x256 table of skin decisions, one per (B, G, R) colour."""
    store = ChampionStore(blob_store)
    champion = serving_champion(store)
    verified = None
    try:
        verified = store.load_lut_with_manifest(champion, packed=True)
    except (UntrustedModelError, ValueError) as error:  # altered, or written in an older format
        context.log.warning(f"recompiling: {error}")
    model = load_verified_champion(store, warehouse, champion)
    if verified is not None:
        # Intact is not enough to reuse it: the service serves any intact table, so one that is not
        # the model's decisions (written by another release, or by hand) is replaced now.
        wrong = disagreeing_colours(verified[1], model, random_colours(secrets.randbits(32), LUT_REUSE_CHECK_COLOURS))
        if len(wrong):
            context.log.warning(f"recompiling: the stored table disagrees with {champion.name} on colours such as {wrong[0].tolist()}")
            verified = None
    reused = verified is not None
    if reused:
        lut = verified[0]
        context.log.info(f"{champion.name} already has a verified lookup table; reused")
    else:
        lut = store.save_lut(champion, compile_lut(model))
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


@dg.asset(
    group_name=SERVING,
    deps=[skin_color_lut],
    kinds={"pillow"},
    automation_condition=EAGER_UNLESS_BLOCKED,
)
def segmented_sample_images(context: dg.AssetExecutionContext, blob_store: BlobStore) -> dg.MaterializeResult:
    """Bundled sample photographs segmented by the champion's lookup table: masks and overlays (PNG)."""
    store = ChampionStore(blob_store)
    champion = serving_champion(store)
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
