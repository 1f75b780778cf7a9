"""The validation rules that split raw pixel rows into validated and rejected rows.

Each rejected row keeps all of its raw fields plus `rules` (the names of the rules it broke)
and `reasons` (a readable sentence per broken rule naming the file, line, column and value).
"""

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from skinseg_assets.pixels.colours import CHANNELS
from skinseg_assets.pixels.source import PIXEL_FIELDS, field_text, quoted_text

SKIN_LABEL, NON_SKIN_LABEL = 1, 2

# Rule name -> what it means; the names appear in `rejected_skin_pixels.rules`.
RULES = {
    "wrong_field_count": "the line does not have exactly 4 fields",
    "missing_value": "a field is empty",
    "not_an_integer": "a field is not a whole number",
    "out_of_range": "a colour channel is outside 0-255",
    "unknown_label": "the label is neither 1 (skin) nor 2 (non-skin)",
    "duplicate_batch": "the whole file has the same content as an earlier batch, so it is not counted twice",
}
DUPLICATE_RULE = "duplicate_batch"
VALIDATED_COLUMNS = ("line_number", *CHANNELS, "is_skin")
REJECTED_COLUMNS = ("source", "line_number", *PIXEL_FIELDS, "extra_fields", "rules", "reasons")


@dataclass(frozen=True)
class ValidationOutcome:
    validated: pd.DataFrame
    rejected: pd.DataFrame

    @property
    def rejected_share(self) -> float:
        """Share of rows rejected for their content (a duplicate batch's rows are not bad data)."""
        return rejected_share(len(self.validated), self.rejected["rules"])

    def rejected_by_rule(self) -> dict[str, int]:
        counts = {rule: 0 for rule in RULES}
        for rules in self.rejected["rules"]:
            for rule in rules.split(","):
                counts[rule] += 1
        return counts


def _rejected_columns(rejected: pd.DataFrame) -> pd.DataFrame:
    """The rejected frame's columns in order, with fixed types even when it has no rows."""
    text_columns = [column for column in REJECTED_COLUMNS if column != "line_number"]
    return rejected[list(REJECTED_COLUMNS)].astype({"line_number": np.int64, **dict.fromkeys(text_columns, object)})


def content_rejections(rejected_rules: pd.Series) -> int:
    """Rejected rows that broke a content rule (a duplicate batch's rows are not bad data)."""
    return int((rejected_rules != DUPLICATE_RULE).sum())


def rejected_share(validated_rows: int, rejected_rules: pd.Series) -> float:
    """Rows that broke a content rule, as a share of all rows that were not duplicates."""
    bad = content_rejections(rejected_rules)
    total = validated_rows + bad
    return bad / total if total else 0.0


def empty_validated_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line_number": pd.Series(dtype=np.int64),
            **{column: pd.Series(dtype=np.uint8) for column in CHANNELS},
            "is_skin": pd.Series(dtype=bool),
        }
    )


def quarantine_duplicate(raw: pd.DataFrame, source: str, original_batch: str) -> ValidationOutcome:
    """All rows of a file whose content equals an earlier batch's: rejected as a duplicate, kept whole."""
    rejected = raw.reset_index(drop=True).copy()
    rejected.insert(0, "source", source)
    rejected["rules"] = DUPLICATE_RULE
    rejected["reasons"] = [
        f"{source} line {line}: the file has the same content as batch {original_batch} [{DUPLICATE_RULE}]"
        for line in rejected["line_number"]
    ]
    return ValidationOutcome(
        validated=empty_validated_frame(),
        rejected=_rejected_columns(rejected),
    )


class _Violations:
    """Collects (row mask, rule, message per row) while the rules run."""

    def __init__(self, size: int, source: str, line_numbers: np.ndarray):
        self.size = size
        self.source = source
        self.line_numbers = line_numbers
        self.found: list[tuple[np.ndarray, str, pd.Series]] = []

    def add(self, mask: np.ndarray, rule: str, describe) -> None:
        if mask.any():
            self.found.append((mask, rule, describe(mask)))

    def any_mask(self) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        for rule_mask, _, _ in self.found:
            mask |= rule_mask
        return mask

    def describe_rows(self, positions: np.ndarray) -> tuple[list[str], list[str]]:
        """Rule names and readable reasons for the rows at `positions` (in order)."""
        row_of = {position: row for row, position in enumerate(positions)}
        rules: list[list[str]] = [[] for _ in positions]
        reasons: list[list[str]] = [[] for _ in positions]
        for rule_mask, rule, messages in self.found:
            for position, message in zip(np.flatnonzero(rule_mask), messages, strict=True):
                row = row_of[position]
                if rule not in rules[row]:
                    rules[row].append(rule)
                reasons[row].append(f"{self.source} line {self.line_numbers[position]}: {message} [{rule}]")
        return [",".join(names) for names in rules], ["; ".join(texts) for texts in reasons]


def _quote(values: pd.Series) -> pd.Series:
    return values.map(lambda value: "empty" if value is None else quoted_text(value))


# A whole number as written: digits 0-9, with a sign or a zero fraction ("12", "+12", "12.0", as
# a Parquet float column reads). Judged on the text: "14.9999999999999999" is 15.0 as a float.
# Only ASCII digits: pandas reads no others ("\u0662\u0660\u0660", Arabic-Indic 200, would be NaN).
WHOLE_NUMBER = r"[+-]?[0-9]+(?:\.0*)?"


# Two numbers in one field with a separator between them: the line was written with another
# delimiter than the file's (the file's own delimiter would have split them).
OTHER_SEPARATOR = re.compile(r"[0-9]\s*([,;|\t]|(?<=[0-9]) +(?=[0-9]))\s*[0-9]")


def _other_separator(fields: pd.DataFrame) -> pd.Series:
    """Per row, a hint naming the separator its numbers share inside one field, or ''."""

    def hint(values) -> str:
        for value in values:
            found = OTHER_SEPARATOR.search(value) if isinstance(value, str) else None
            if found:
                return f" (it separates values with {found.group(1)[0]!r}, not the file's delimiter)"
        return ""

    return pd.Series([hint(row) for row in fields.itertuples(index=False)], dtype=object)


def distinct_texts(text: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's position in the list of distinct texts (-1 for an absent field), and that list.

    Arrow compares whole strings; `pd.factorize` (pandas 2.3) stops at a NUL character, so it
    would judge "1\\x00" as the "1" before it (pandas-dev/pandas#34551).
    """
    # 64-bit offsets: any amount of text fits one array (no chunks to join).
    encoded = pa.array(text, type=pa.large_string(), from_pandas=True).dictionary_encode()
    return encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist()


def _read_fields(text: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: is the field empty or absent, its number (NaN if it is none), and is it written
    as a whole number.

    Worked out once per distinct text: a pixel file repeats a few hundred texts millions of times.
    """
    codes, distinct = distinct_texts(text)
    said = pd.Series([field_text(written) for written in distinct], dtype=object)  # quotes and spaces off
    empty = np.append((said == "").to_numpy(dtype=bool), True)
    number = pd.to_numeric(said, errors="coerce").to_numpy(dtype=float)
    whole = said.str.fullmatch(WHOLE_NUMBER).to_numpy(dtype=bool)
    # A whole number too long for a float (over 308 digits, leading zeros too) reads as NaN: judged
    # by its digits without leading zeros, past 3 of which it is out of range whatever they are.
    too_long = whole & np.isnan(number)
    if too_long.any():
        written = said[too_long].str.split(".").str[0]
        digits = written.str.lstrip("+-").str.lstrip("0")
        magnitude = np.where(digits.str.len() > 3, np.inf, pd.to_numeric(digits.replace("", "0"), errors="coerce"))
        number[too_long] = np.where(written.str.startswith("-"), -magnitude, magnitude)
    number, whole = np.append(number, np.nan), np.append(whole, False)
    return empty[codes], number[codes], whole[codes]


def validate_pixels(raw: pd.DataFrame, source: str) -> ValidationOutcome:
    """Apply the rules to a raw frame (see `source.parse_pixel_file`); lose no row."""
    line_numbers = raw["line_number"].to_numpy()
    violations = _Violations(len(raw), source, line_numbers)

    extra = raw["extra_fields"].notna().to_numpy()
    short = raw[list(PIXEL_FIELDS)].isna().any(axis=1).to_numpy()
    violations.add(
        extra | short,
        "wrong_field_count",
        lambda mask: pd.Series(
            np.where(extra[mask], "the line has more than 4 fields", "the line has fewer than 4 fields")
        )
        + _other_separator(raw.loc[mask, list(PIXEL_FIELDS)]),
    )

    parsed = {}
    for column in PIXEL_FIELDS:
        text = raw[column]
        empty, number, whole = _read_fields(text)
        missing = empty & ~short
        not_integer = ~missing & ~short & ~whole
        violations.add(missing, "missing_value", lambda mask, c=column: pd.Series([f"{c} is empty"] * mask.sum()))
        violations.add(
            not_integer,
            "not_an_integer",
            lambda mask, c=column, t=text: f"{c}=" + _quote(t[mask]) + " is not a whole number",
        )
        parsed[column] = (number, ~(missing | not_integer | short))

    for column in CHANNELS:
        number, usable = parsed[column]
        outside = usable & ((number < 0) | (number > 255))
        violations.add(
            outside,
            "out_of_range",
            lambda mask, c=column, t=raw[column]: f"{c}=" + _quote(t[mask]) + " is outside 0-255",
        )
    label, usable = parsed["label"]
    unknown = usable & ~np.isin(label, (SKIN_LABEL, NON_SKIN_LABEL))
    violations.add(
        unknown,
        "unknown_label",
        lambda mask: "label=" + _quote(raw["label"][mask]) + " is neither 1 (skin) nor 2 (non-skin)",
    )

    rejected_mask = violations.any_mask()
    keep = ~rejected_mask
    validated = pd.DataFrame(
        {
            "line_number": line_numbers[keep].astype(np.int64),
            **{column: parsed[column][0][keep].astype(np.uint8) for column in CHANNELS},
            "is_skin": parsed["label"][0][keep] == SKIN_LABEL,
        }
    )
    rejected = raw.loc[rejected_mask].reset_index(drop=True)
    rejected.insert(0, "source", source)
    rejected["rules"], rejected["reasons"] = violations.describe_rows(np.flatnonzero(rejected_mask))
    return ValidationOutcome(
        validated=validated,
        rejected=_rejected_columns(rejected),
    )
