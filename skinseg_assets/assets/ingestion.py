"""Ingestion assets: pixels as read, then split by the validation rules into usable and rejected."""

import warnings
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_gcp import GCSResource
from dagster_pandera import pandera_schema_to_dagster_type
from pydantic import Field

from skinseg_assets.assets.metadata import markdown_table
from skinseg_assets.pixels.rules import RULES, validate_pixels
from skinseg_assets.pixels.schema import ValidatedSkinPixels
from skinseg_assets.pixels.source import PixelFile, PixelFileError, parse_pixel_file, read_bundled_uci

INGESTION = "ingestion"


class PixelSourceConfig(dg.Config):
    source_uri: str = Field(
        default="",
        description="A pixel file in the UCI format: a local path or gs://bucket/object. "
        "Empty means the UCI Skin Segmentation file bundled with skinseg.",
    )


def read_pixel_source(source_uri: str, gcs: GCSResource) -> PixelFile:
    """The bytes of a pixel file named by a local path or a gs:// URI (empty: the bundled file)."""
    if not source_uri:
        return read_bundled_uci()
    if source_uri.startswith("gs://"):
        from google.api_core.exceptions import NotFound

        bucket, _, name = source_uri.removeprefix("gs://").partition("/")
        try:
            content = gcs.get_client().bucket(bucket).blob(name).download_as_bytes()
        except NotFound:
            raise PixelFileError(source_uri, "does not exist") from None
        return PixelFile(source=source_uri, content=content)
    path = Path(source_uri).expanduser()
    if not path.is_file():
        raise PixelFileError(source_uri, "does not exist or is not a file")
    return PixelFile(source=str(path.resolve()), content=path.read_bytes())


@dg.asset(group_name=INGESTION, kinds={"duckdb", "pandas"})
def raw_skin_pixels(context: dg.AssetExecutionContext, config: PixelSourceConfig, gcs: GCSResource) -> dg.Output:
    """Pixel rows exactly as read from their source file: every field kept as text, one row per line."""
    try:
        pixel_file = read_pixel_source(config.source_uri, gcs)
        parsed = parse_pixel_file(pixel_file)
    except PixelFileError as error:
        # A Failure puts the file and the problem at the top of the run's error, not under a trace.
        raise dg.Failure(
            description=str(error), metadata={"File": error.source, "Problem": error.problem}
        ) from error
    raw = parsed.raw
    raw.insert(0, "source", pixel_file.source)
    if parsed.header:
        context.log.info(f"{pixel_file.source}: header line {parsed.header.strip()!r} skipped")
    return dg.Output(
        raw,
        metadata={
            "Source": pixel_file.source,
            "Rows": dg.MetadataValue.int(len(raw)),
            "sha256": pixel_file.sha256,
            "Size (bytes)": dg.MetadataValue.int(len(pixel_file.content)),
            "Delimiter": parsed.delimiter,
            "Header": parsed.header.strip() if parsed.header else "none",
            "Preview": markdown_table(raw.head(5)),
        },
    )


with warnings.catch_warnings():
    # dagster-pandera marks this function beta; the warning would print on every code load.
    warnings.simplefilter("ignore", dg.BetaWarning)
    ValidatedSkinPixelsType = pandera_schema_to_dagster_type(ValidatedSkinPixels)


@dg.multi_asset(
    outs={
        "validated_skin_pixels": dg.AssetOut(
            group_name=INGESTION,
            dagster_type=ValidatedSkinPixelsType,
            kinds={"duckdb", "pandas"},
            description="Usable pixels: B, G, R as 0-255 integers and is_skin, checked by the Pandera schema.",
        ),
        "rejected_skin_pixels": dg.AssetOut(
            group_name=INGESTION,
            kinds={"duckdb", "pandas"},
            description="Raw rows that broke a validation rule, kept whole with the rules and readable reasons.",
        ),
    },
)
def validated_and_rejected_skin_pixels(raw_skin_pixels: pd.DataFrame):
    """Apply the validation rules to the raw rows; every raw row lands in exactly one output."""
    source = str(raw_skin_pixels["source"].iat[0]) if len(raw_skin_pixels) else "unknown source"
    outcome = validate_pixels(raw_skin_pixels.drop(columns="source"), source)
    by_rule = outcome.rejected_by_rule()
    rule_table = markdown_table(
        pd.DataFrame({"rule": list(by_rule), "meaning": [RULES[rule] for rule in by_rule], "rows": list(by_rule.values())})
    )
    shared = {"Source": source, "Raw rows": dg.MetadataValue.int(len(raw_skin_pixels))}
    yield dg.Output(
        outcome.validated,
        output_name="validated_skin_pixels",
        metadata={
            **shared,
            "Rows": dg.MetadataValue.int(len(outcome.validated)),
            "Skin share": dg.MetadataValue.float(float(outcome.validated["is_skin"].mean()) if len(outcome.validated) else 0.0),
            "Rejected rows": dg.MetadataValue.int(len(outcome.rejected)),
            "Rejected share": dg.MetadataValue.float(outcome.rejected_share),
        },
    )
    yield dg.Output(
        outcome.rejected,
        output_name="rejected_skin_pixels",
        metadata={
            **shared,
            "Rows": dg.MetadataValue.int(len(outcome.rejected)),
            "Rows by rule": rule_table,
            "First reasons": dg.MetadataValue.md(
                "\n".join(f"- {reason}" for reason in outcome.rejected["reasons"].head(10)) or "none"
            ),
        },
    )
