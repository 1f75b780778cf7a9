"""Metadata for the UI: Markdown tables whose cells hold raw text."""

import re

import pandas as pd

from skinseg_assets.assets.metadata import markdown_table


def cells(line: str) -> list[str]:
    """A Markdown table row's cells, split where GitHub-flavoured Markdown splits them (unescaped pipes)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_pipes_and_line_breaks_in_raw_text_stay_inside_their_cell():
    frame = pd.DataFrame(
        {"line": [2, 3], "field": ["1|2", "4\n5"], "reason": ["x.txt line 2: B='1|2' [b_whole_number]", None]}
    )
    lines = markdown_table(frame).value.splitlines()
    assert len(lines) == 4  # header, rule, one line per row
    assert [len(cells(line)) for line in lines] == [3, 3, 3, 3]
    assert cells(lines[2]) == ["2", "1\\|2", "x.txt line 2: B='1\\|2' [b_whole_number]"]
    assert cells(lines[3]) == ["3", "4 5", ""]
