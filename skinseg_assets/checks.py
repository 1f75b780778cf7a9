"""Asset checks. Blocking checks stop a run before bad data or a bad model flows downstream."""

import secrets

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from pydantic import Field

from skinseg_assets.assets.metadata import markdown_table
from skinseg_assets.assets.serving import load_verified_champion, serving_champion
from skinseg_assets.partitions import partitioned_checks, pixel_batches
from skinseg_assets.pixels.lut import disagreeing_colours, random_colours
from skinseg_assets.pixels.rules import DUPLICATE_RULE, content_rejections, rejected_share
from skinseg_assets.pixels.schema import ValidatedSkinPixels
from skinseg_assets.resources.blob_store import BlobStore
from skinseg_assets.resources.champion_store import ChampionStore
from skinseg_assets.resources.warehouse import Warehouse

# Data quality checks


class RejectedShareConfig(dg.Config):
    max_rejected_share: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Largest share of raw rows that may be rejected"
    )


with partitioned_checks():  # one result per batch
    @dg.asset_check(
        asset="validated_skin_pixels",
        blocking=True,
        partitions_def=pixel_batches,
        additional_ins={"rejected_skin_pixels": dg.AssetIn()},
        description="The Pandera schema holds on every row of the batch, and no more than the allowed share "
        "of its raw rows was rejected (a duplicate batch's rows do not count as bad).",
    )
    def validated_pixels_schema(
        config: RejectedShareConfig, validated_skin_pixels: pd.DataFrame, rejected_skin_pixels: pd.DataFrame
    ) -> dg.AssetCheckResult:
        failures = pd.DataFrame()
        try:
            ValidatedSkinPixels.validate(validated_skin_pixels, lazy=True)
        except pa.errors.SchemaErrors as errors:
            failures = errors.failure_cases
        share = rejected_share(len(validated_skin_pixels), rejected_skin_pixels["rules"])
        bad = content_rejections(rejected_skin_pixels["rules"])
        duplicates = len(rejected_skin_pixels) - bad
        metadata = {
            "Schema failures": dg.MetadataValue.int(len(failures)),
            "Rejected rows": dg.MetadataValue.int(len(rejected_skin_pixels)),
            "Rejected share": dg.MetadataValue.float(share),
            "Allowed rejected share": dg.MetadataValue.float(config.max_rejected_share),
            "Rows of a duplicate batch": dg.MetadataValue.int(duplicates),
        }
        if len(failures):
            metadata["Schema failure cases"] = markdown_table(failures.head(20).astype(str))
        if len(rejected_skin_pixels):
            metadata["Rejected rows (first 20)"] = markdown_table(
                rejected_skin_pixels[["source", "line_number", "rules", "reasons"]].head(20)
            )
        has_rows = len(validated_skin_pixels) + len(rejected_skin_pixels) > 0
        problems = []
        if len(failures):
            problems.append(f"{len(failures):,} schema failures in the validated rows")
        if share > config.max_rejected_share:
            problems.append(
                f"{bad:,} of {len(validated_skin_pixels) + bad:,} rows rejected ({share:.4%}), more than the allowed "
                f"{config.max_rejected_share:.2%} "
                f"(first: {rejected_skin_pixels.loc[rejected_skin_pixels['rules'] != DUPLICATE_RULE, 'reasons'].iloc[0]}; "
                "all in rejected_skin_pixels)"
            )
        if not has_rows:
            problems.append("the batch has no rows")
        return dg.AssetCheckResult(
            passed=not problems,
            metadata=metadata,
            description="; ".join(problems)
            or f"{len(validated_skin_pixels):,} rows hold the schema; {share:.2%} rejected (allowed {config.max_rejected_share:.2%})",
        )


# Model quality checks

LUT_CHECK_COLOURS = 200_000
LUT_CHECK_EXAMPLES = 10  # disagreeing colours named in a failed check


@dg.asset_check(
    asset="skin_color_lut",
    blocking=True,
    description=f"The table gives the champion model's own decision on {LUT_CHECK_COLOURS:,} random colours.",
)
def lut_matches_champion(blob_store: BlobStore, warehouse: Warehouse) -> dg.AssetCheckResult:
    store = ChampionStore(blob_store)
    champion = serving_champion(store)
    table = store.load_lut(champion, packed=True)
    if table is None:
        return dg.AssetCheckResult(passed=False, metadata={"Problem": f"{champion.name} has no lookup table"})
    # Other colours at each check; the seed in the metadata draws the same ones again.
    seed = secrets.randbits(32)
    colours = random_colours(seed, LUT_CHECK_COLOURS)
    wrong = disagreeing_colours(table, load_verified_champion(store, warehouse, champion), colours)
    metadata = {
        "Champion version": champion.name,
        "Colours checked": dg.MetadataValue.int(len(colours)),
        "Random seed": dg.MetadataValue.int(seed),
        "Disagreements": dg.MetadataValue.int(len(wrong)),
    }
    if len(wrong):
        examples = wrong[:LUT_CHECK_EXAMPLES].tolist()
        metadata["Disagreeing colours (B, G, R)"] = ", ".join(f"({b}, {g}, {r})" for b, g, r in examples)
    return dg.AssetCheckResult(passed=not len(wrong), metadata=metadata)


# colours_disjoint (train_and_test_pixels) and f1_above_floor (model_metrics) are checked by the
# assets that make the data, on the frames in hand; see assets/training.py.
asset_checks = [validated_pixels_schema, lut_matches_champion]
