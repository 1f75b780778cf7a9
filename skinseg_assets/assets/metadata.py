"""Metadata helpers: readable tables and inline images for the Dagster UI."""

import base64

import dagster as dg
import pandas as pd


def markdown_table(frame: pd.DataFrame) -> dg.MarkdownMetadataValue:
    """A small frame as a Markdown table (for previews and summaries in the UI)."""
    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join("" if value is None else str(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return dg.MetadataValue.md("\n".join([header, rule, *rows]))


def markdown_image(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG shown inline in the UI's metadata panel."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})")
