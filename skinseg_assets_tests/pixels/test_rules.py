"""The validation rules: every bad row is rejected with readable reasons, and no row is lost."""

import warnings

import numpy as np
import pandas as pd
import pytest

from skinseg_assets.pixels.rules import REJECTED_COLUMNS, RULES, VALIDATED_COLUMNS, validate_pixels
from skinseg_assets.pixels.schema import ValidatedSkinPixels
from skinseg_assets.pixels.source import PixelFile, parse_pixel_file

FILE_NAME = "/landing/pixels-2024.txt"
GOOD_BEFORE = "74\t85\t123\t1"  # line 1
GOOD_AFTER = "12\t200\t0\t2"  # line 3
NEITHER = "is neither 1 (skin) nor 2 (non-skin)"


def outcome_of(lines: list[str], delimiter: str = "\t", line_end: str = "\n"):
    """Validate a file of `lines` (written with tabs, re-joined with `delimiter`)."""
    content = "".join(line.replace("\t", delimiter) + line_end for line in lines).encode()
    parsed = parse_pixel_file(PixelFile(source=FILE_NAME, content=content))
    return validate_pixels(parsed.raw, FILE_NAME)


def reason(line: int, message: str, rule: str) -> str:
    return f"{FILE_NAME} line {line}: {message} [{rule}]"


# One bad line between two good ones (so it is line 2), the single rule it breaks, and the
# message naming the column and the value as written.
ONE_RULE_BROKEN = [
    ("256\t10\t10\t1", "out_of_range", "B='256' is outside 0-255"),
    ("10\t300\t10\t2", "out_of_range", "G='300' is outside 0-255"),
    ("10\t10\t1000\t2", "out_of_range", "R='1000' is outside 0-255"),
    ("-1\t10\t10\t1", "out_of_range", "B='-1' is outside 0-255"),
    ("10\t10\t-300\t2", "out_of_range", "R='-300' is outside 0-255"),
    ("10\t 256 \t10\t2", "out_of_range", "G=' 256 ' is outside 0-255"),
    ("abc\t10\t10\t1", "not_an_integer", "B='abc' is not a whole number"),
    ("10\t1.5\t10\t1", "not_an_integer", "G='1.5' is not a whole number"),
    ("10\t10\t12a\t1", "not_an_integer", "R='12a' is not a whole number"),
    ("10\t10\tinf\t1", "not_an_integer", "R='inf' is not a whole number"),
    ("10\t10\t10\t1.5", "not_an_integer", "label='1.5' is not a whole number"),
    ("10\t10\t10\tx", "not_an_integer", "label='x' is not a whole number"),
    # Fractions a float cannot tell from a whole number are judged as written.
    ("10\t10\t14.9999999999999999\t2", "not_an_integer", "R='14.9999999999999999' is not a whole number"),
    ("10\t10\t10\t0.99999999999999999", "not_an_integer", "label='0.99999999999999999' is not a whole number"),
    ("255.0000000000000001\t10\t10\t1", "not_an_integer", "B='255.0000000000000001' is not a whole number"),
    ("1e2\t10\t10\t1", "not_an_integer", "B='1e2' is not a whole number"),
    ("-" + "9" * 30 + "\t10\t10\t1", "out_of_range", f"B={'-' + '9' * 30!r} is outside 0-255"),
    ("-" + "9" * 400 + "\t10\t10\t1", "out_of_range", f"B={'-' + '9' * 39!r}… is outside 0-255"),
    ("0" * 400 + "256\t10\t10\t1", "out_of_range", f"B={'0' * 40!r}… is outside 0-255"),
    # A NUL character is part of the text: line 1's "74" and "1" do not make these whole numbers.
    ("74\x00\t10\t10\t1", "not_an_integer", "B='74\\x00' is not a whole number"),
    ("10\t10\t10\t1\x00", "not_an_integer", "label='1\\x00' is not a whole number"),
    # Digits of other scripts: Python's int() reads them, pandas does not (they became 0, kept).
    ("\u0662\u0660\u0660\t87\t125\t1", "not_an_integer", "B='\u0662\u0660\u0660' is not a whole number"),
    ("10\t\uff11\uff12\t10\t1", "not_an_integer", "G='\uff11\uff12' is not a whole number"),
    ("\t10\t10\t1", "missing_value", "B is empty"),
    ("10\t\t10\t1", "missing_value", "G is empty"),
    ("10\t10\t \t1", "missing_value", "R is empty"),
    ("10\t10\t10\t", "missing_value", "label is empty"),
    ("10\t10\t10\t0", "unknown_label", f"label='0' {NEITHER}"),
    ("10\t10\t10\t3", "unknown_label", f"label='3' {NEITHER}"),
    ("10\t10\t10\t-1", "unknown_label", f"label='-1' {NEITHER}"),
    ("10\t10\t10\t12", "unknown_label", f"label='12' {NEITHER}"),
    ("10\t10\t10", "wrong_field_count", "the line has fewer than 4 fields"),
    ("10", "wrong_field_count", "the line has fewer than 4 fields"),
    ("", "wrong_field_count", "the line has fewer than 4 fields"),
    ("10;10;10;1", "wrong_field_count", "the line has fewer than 4 fields (it separates values with ';', not the file's delimiter)"),
    ("10\t10 10 1", "wrong_field_count", "the line has fewer than 4 fields (it separates values with ' ', not the file's delimiter)"),
    ("10|10\t10", "wrong_field_count", "the line has fewer than 4 fields (it separates values with '|', not the file's delimiter)"),
    ("10\t10\t10\t1\t7", "wrong_field_count", "the line has more than 4 fields"),
    ("10\t10\t10\t1\t", "wrong_field_count", "the line has more than 4 fields"),
]


FILE_STYLES = pytest.mark.parametrize(
    ("delimiter", "line_end"), [("\t", "\n"), (",", "\r\n")], ids=["tab-lf", "comma-crlf"]
)


@FILE_STYLES
@pytest.mark.parametrize(("bad_line", "rule", "message"), ONE_RULE_BROKEN)
def test_a_row_breaking_one_rule_is_rejected_with_file_line_column_and_value(
    bad_line, rule, message, delimiter, line_end
):
    outcome = outcome_of([GOOD_BEFORE, bad_line, GOOD_AFTER], delimiter, line_end)

    assert outcome.rejected["rules"].tolist() == [rule]
    assert outcome.rejected["reasons"].tolist() == [reason(2, message, rule)]
    assert outcome.rejected["source"].tolist() == [FILE_NAME]
    assert outcome.rejected["line_number"].tolist() == [2]


@FILE_STYLES
@pytest.mark.parametrize(("bad_line", "rule", "message"), ONE_RULE_BROKEN)
def test_no_row_is_lost_and_rejected_rows_keep_their_text(bad_line, rule, message, delimiter, line_end):
    outcome = outcome_of([GOOD_BEFORE, bad_line, GOOD_AFTER], delimiter, line_end)

    assert len(outcome.validated) + len(outcome.rejected) == 3
    assert outcome.validated["line_number"].tolist() == [1, 3]
    fields = bad_line.replace("\t", delimiter).split(delimiter)
    written = fields[:4] + [None] * (4 - len(fields))
    kept = outcome.rejected[["B", "G", "R", "label"]].iloc[0].tolist()
    assert kept == written
    assert outcome.rejected["extra_fields"].iat[0] == (delimiter.join(fields[4:]) if len(fields) > 4 else None)


def test_leading_zeros_do_not_make_a_number_out_of_range():
    # Over 308 characters a float cannot hold the text; the value is still 5, or 0.
    outcome = outcome_of(["0" * 400 + "5\t85\t-" + "0" * 400 + "\t1", GOOD_AFTER])
    assert outcome.rejected.empty
    assert outcome.validated[["B", "G", "R"]].values.tolist() == [[5, 85, 0], [12, 200, 0]]


def test_a_text_with_a_nul_character_does_not_decide_for_the_same_text_without_it():
    # Each distinct text is judged once; "74\x00" coming first must not make line 2's "74" bad.
    outcome = outcome_of(["74\x00\t85\t123\t1", GOOD_BEFORE])
    assert outcome.validated["line_number"].tolist() == [2]
    assert outcome.validated[["B", "G", "R"]].values.tolist() == [[74, 85, 123]]
    assert outcome.rejected["reasons"].tolist() == [reason(1, "B='74\\x00' is not a whole number", "not_an_integer")]


def test_line_numbers_in_reasons_count_the_header_line():
    outcome = outcome_of(["B\tG\tR\tlabel", "300\t1\t1\t1", GOOD_AFTER])
    assert outcome.rejected["reasons"].tolist() == [reason(2, "B='300' is outside 0-255", "out_of_range")]
    assert outcome.validated["line_number"].tolist() == [3]


@pytest.mark.parametrize(
    ("bad_line", "rules", "messages"),
    [
        (
            "300\tabc\t\t7",
            {"out_of_range", "not_an_integer", "missing_value", "unknown_label"},
            [
                ("B='300' is outside 0-255", "out_of_range"),
                ("G='abc' is not a whole number", "not_an_integer"),
                ("R is empty", "missing_value"),
                (f"label='7' {NEITHER}", "unknown_label"),
            ],
        ),
        (
            "-1\t256\t999\t1",
            {"out_of_range"},
            [
                ("B='-1' is outside 0-255", "out_of_range"),
                ("G='256' is outside 0-255", "out_of_range"),
                ("R='999' is outside 0-255", "out_of_range"),
            ],
        ),
        (
            "abc\t1.5\t\tx",
            {"not_an_integer", "missing_value"},
            [
                ("B='abc' is not a whole number", "not_an_integer"),
                ("G='1.5' is not a whole number", "not_an_integer"),
                ("R is empty", "missing_value"),
                ("label='x' is not a whole number", "not_an_integer"),
            ],
        ),
        (
            "\t\t\t",
            {"missing_value"},
            [
                ("B is empty", "missing_value"),
                ("G is empty", "missing_value"),
                ("R is empty", "missing_value"),
                ("label is empty", "missing_value"),
            ],
        ),
    ],
    ids=["four-rules", "three-channels-out-of-range", "mixed-not-integer", "all-empty"],
)
def test_every_broken_rule_on_a_row_is_listed(bad_line, rules, messages):
    outcome = outcome_of([GOOD_BEFORE, bad_line, GOOD_AFTER])

    assert len(outcome.rejected) == 1
    listed = outcome.rejected["rules"].iat[0].split(",")
    assert sorted(listed) == sorted(rules), "each rule is named once"
    assert sorted(outcome.rejected["reasons"].iat[0].split("; ")) == sorted(
        reason(2, message, rule) for message, rule in messages
    )
    assert outcome.rejected[["B", "G", "R", "label"]].iloc[0].tolist() == bad_line.split("\t")
    assert outcome.validated["line_number"].tolist() == [1, 3]


@pytest.mark.parametrize(
    ("line", "colour", "is_skin"),
    [
        ("0\t0\t0\t1", (0, 0, 0), True),
        ("255\t255\t255\t2", (255, 255, 255), False),
        ("74\t85\t123\t1", (74, 85, 123), True),
        (" 7 \t 8\t9 \t 2 ", (7, 8, 9), False),
        ("007\t08\t9\t1", (7, 8, 9), True),
    ],
    ids=["black-skin", "white-non-skin", "uci-first-row", "padded", "leading-zeros"],
)
def test_a_good_row_is_validated_with_its_colour_and_class(line, colour, is_skin):
    outcome = outcome_of([line])
    assert len(outcome.rejected) == 0
    row = outcome.validated.iloc[0]
    assert (int(row["B"]), int(row["G"]), int(row["R"])) == colour
    assert bool(row["is_skin"]) is is_skin
    assert row["line_number"] == 1


def test_a_mixed_file_splits_into_validated_and_rejected_in_line_order():
    lines = [
        "1\t2\t3\t1",  # 1 ok
        "256\t2\t3\t1",  # 2 out_of_range
        "4\t5\t6\t2",  # 3 ok
        "4\t5\t6",  # 4 wrong_field_count
        "7\t8\t9\t3",  # 5 unknown_label
        "10\t11\t12\t2",  # 6 ok
        "x\t300\t9\t1",  # 7 not_an_integer, out_of_range
    ]
    outcome = outcome_of(lines)

    assert outcome.validated["line_number"].tolist() == [1, 3, 6]
    assert outcome.validated["is_skin"].tolist() == [True, False, False]
    assert outcome.rejected["line_number"].tolist() == [2, 4, 5, 7]
    assert sorted(outcome.validated["line_number"].tolist() + outcome.rejected["line_number"].tolist()) == list(
        range(1, 8)
    )
    assert outcome.rejected_share == pytest.approx(4 / 7)
    assert outcome.rejected_by_rule() == {
        "wrong_field_count": 1,
        "missing_value": 0,
        "not_an_integer": 1,
        "out_of_range": 2,
        "unknown_label": 1,
        "duplicate_batch": 0,
    }


def test_a_rule_broken_twice_on_one_row_counts_once():
    outcome = outcome_of(["abc\tdef\t1\t1"])
    assert outcome.rejected["rules"].tolist() == ["not_an_integer"]
    assert outcome.rejected["reasons"].iat[0].count("[not_an_integer]") == 2
    assert outcome.rejected_by_rule()["not_an_integer"] == 1


def test_the_frames_have_the_documented_columns_and_the_validated_one_meets_the_schema():
    outcome = outcome_of(["1\t2\t3\t1", "999\t2\t3\t1\t5", "4\t5\t6\t2"])
    assert tuple(outcome.validated.columns) == VALIDATED_COLUMNS
    assert tuple(outcome.rejected.columns) == REJECTED_COLUMNS
    assert outcome.rejected["line_number"].dtype == np.int64
    ValidatedSkinPixels.validate(outcome.validated.assign(batch="a-batch"))  # the asset adds the batch


def test_every_rule_has_a_meaning_and_the_counts_start_at_zero():
    outcome = outcome_of(["1\t2\t3\t1"])
    assert outcome.rejected_by_rule() == dict.fromkeys(RULES, 0)
    assert outcome.rejected_share == 0.0
    assert len(outcome.rejected) == 0
    assert tuple(outcome.rejected.columns) == REJECTED_COLUMNS
    assert all(RULES.values())


def test_an_empty_raw_frame_gives_two_empty_frames():
    raw = pd.DataFrame({column: pd.Series(dtype=object) for column in ("B", "G", "R", "label", "extra_fields")})
    raw.insert(0, "line_number", pd.Series(dtype=np.int64))
    outcome = validate_pixels(raw, FILE_NAME)
    assert (len(outcome.validated), len(outcome.rejected)) == (0, 0)
    assert outcome.rejected_share == 0.0


def test_the_rules_run_without_numeric_warnings():
    """Values like 'inf' or 'nan' are rejected quietly, not with a RuntimeWarning in the run log."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outcome = outcome_of(["inf\t-inf\tnan\t1", "1e400\t1\t1\tinf", "1\t2\t3\t1"])
    assert outcome.rejected["rules"].tolist() == ["not_an_integer", "not_an_integer"]


# --- the bundled file --------------------------------------------------------------------------


def test_every_row_of_the_bundled_file_is_valid(bundled_outcome):
    # 245,057 rows of which 50,859 skin: the published facts of the UCI data set.
    assert len(bundled_outcome.rejected) == 0
    assert len(bundled_outcome.validated) == 245_057
    assert int(bundled_outcome.validated["is_skin"].sum()) == 50_859
    assert bundled_outcome.validated["line_number"].tolist()[:3] == [1, 2, 3]
    ValidatedSkinPixels.validate(bundled_outcome.validated.assign(batch="uci"))


def test_whole_numbers_with_a_sign_a_zero_fraction_or_spaces_are_valid():
    # "74.0" is how a Parquet float column reads; the rule is about the value written, not its form.
    outcome = outcome_of(["74.0\t+85\t 123 \t1.00", "0\t255.\t-0\t2"])
    assert len(outcome.rejected) == 0
    assert outcome.validated[["B", "G", "R", "is_skin"]].values.tolist() == [[74, 85, 123, True], [0, 255, 0, False]]
