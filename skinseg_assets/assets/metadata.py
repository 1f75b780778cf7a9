"""Metadata helpers: readable tables and inline images for the Dagster UI."""

import base64

import dagster as dg
import pandas as pd


def latest_materialization_metadata(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str | None = None
) -> dict[str, dg.MetadataValue] | None:
    """The metadata of the asset's (partition's) latest materialization; None if there is none."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    return dict(materialization.metadata) if materialization else {}


def markdown_cell(value) -> str:
    """A value as the text of one table cell: a pipe or a line break in it (raw pixel text may
    hold either) would otherwise end the cell or the row."""
    text = "" if value is None else str(value)
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").splitlines())


def markdown_table(frame: pd.DataFrame) -> dg.MarkdownMetadataValue:
    """A small frame as a Markdown table (for previews and summaries in the UI)."""
    header = "| " + " | ".join(markdown_cell(column) for column in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(markdown_cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return dg.MetadataValue.md("\n".join([header, rule, *rows]))


def markdown_image(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG shown inline in the UI's metadata panel."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})")
