"""Reading pixel files: file-level refusals, lossless raw frames, and the bundled UCI copy."""

import csv
import gzip
import hashlib
import io
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from skinseg_assets.pixels import source
from skinseg_assets.pixels.rules import validate_pixels
from skinseg_assets.pixels.source import (
    BUNDLED_UCI_SHA256,
    BUNDLED_UCI_URI,
    RAW_COLUMNS,
    PixelFile,
    PixelFileError,
    parse_pixel_file,
    read_bundled_uci,
)

FILE_NAME = "gs://landing/pixels-2024.txt"
# Published in skinseg_assets/data/README.md (and by UCI): the file's facts, not the code's output.
UCI_SHA256 = "008f1fb6a169498dec54fb5951be6478e5465942cc4f6df3b5dabbe484c9a98f"
UCI_ROWS, UCI_SKIN_ROWS = 245_057, 50_859

GOOD_ROWS = [("74", "85", "123", "1"), ("12", "200", "0", "2"), ("255", "0", "17", "2")]


def pixel_bytes(lines: list[str], line_end: str = "\n", encoding: str = "utf-8") -> bytes:
    return "".join(line + line_end for line in lines).encode(encoding)


def tab_lines(rows=GOOD_ROWS) -> list[str]:
    return ["\t".join(row) for row in rows]


def parse(content: bytes):
    return parse_pixel_file(PixelFile(source=FILE_NAME, content=content))


def refusal(content: bytes) -> PixelFileError:
    with pytest.raises(PixelFileError) as raised:
        parse(content)
    return raised.value


def text_fields(raw) -> list[tuple]:
    return list(raw[["B", "G", "R", "label"]].itertuples(index=False, name=None))


# --- file-level refusals: each names the file and the problem ---------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"\n", b"\n\n\n", b"  \r\n\t\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"],
    ids=["zero-bytes", "one-newline", "newlines", "whitespace-lines", "bom-only", "bom-and-crlf"],
)
def test_an_empty_file_is_refused(content):
    error = refusal(content)
    assert str(error) == f"{FILE_NAME}: is empty: no pixel rows"
    assert error.source == FILE_NAME
    assert error.problem == "is empty: no pixel rows"


@pytest.mark.parametrize(
    "header",
    ["B\tG\tR\tlabel", "B,G,R,label", "b\tg\tr\tclass", "B,G,R,y"],
)
@pytest.mark.parametrize("trailer", ["\n", "\r\n", "\n\n", ""])
def test_a_header_only_file_is_refused(header, trailer):
    error = refusal((header + trailer).encode())
    assert str(error) == f"{FILE_NAME}: has a header ({header!r}) but no pixel rows"


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (["74\t85\t123", "1\t2\t3"], "line 1 has 3 fields, expected 4 (B, G, R, label): a column is missing"),
        (["74,85", "1,2"], "line 1 has 2 fields, expected 4 (B, G, R, label): a column is missing"),
        (
            ["74\t85\t123\t1\t9", "1\t2\t3\t1\t9"],
            "line 1 has 5 fields, expected 4 (B, G, R, label): there is an extra column",
        ),
        (
            ["74\t85\t123\t1\t", *tab_lines()],
            "line 1 has 5 fields, expected 4 (B, G, R, label): there is an extra column",
        ),
        (
            ["id,B,G,R,label", "1,74,85,123,1"],
            "line 1 has 5 fields, expected 4 (B, G, R, label): there is an extra column",
        ),
        (
            ["B,G,R,label", "74,85,123"],
            "line 2 has 3 fields, expected 4 (B, G, R, label): a column is missing",
        ),
    ],
    ids=["three-tab", "two-comma", "five-tab", "trailing-tab", "extra-id-column", "header-then-short"],
)
def test_a_missing_or_extra_column_on_the_first_line_is_refused(lines, problem):
    error = refusal(pixel_bytes(lines))
    assert str(error) == f"{FILE_NAME}: {problem}"
    assert error.problem == problem


@pytest.mark.parametrize(
    ("first_line", "name"),
    [
        ("74;85;123;1", "semicolons"),
        ("74; 85; 123; 1", "semicolons"),
        ("74 85 123 1", "spaces"),
        ("74  85  123  1", "spaces"),
        ("74|85|123|1", "pipes"),
    ],
)
def test_a_wrong_delimiter_is_refused(first_line, name):
    error = refusal(pixel_bytes([first_line, first_line]))
    assert str(error) == (
        f"{FILE_NAME}: line 1 is separated by {name} ({first_line!r}); "
        "expected tab- or comma-separated B, G, R, label"
    )


@pytest.mark.parametrize("first_line", ["74", "7485123", "abc", "  74  "])
def test_a_single_field_first_line_is_refused(first_line):
    error = refusal(pixel_bytes([first_line, *tab_lines()]))
    assert str(error) == (
        f"{FILE_NAME}: line 1 ({first_line.strip()!r}) has a single field; "
        "expected 4 tab- or comma-separated fields: B, G, R, label"
    )


def test_an_error_quotes_only_the_start_of_a_long_line():
    # A file that is not pixel data at all (an environment, a key): the log gets 40 characters of it.
    secret_line = "DAGSTER_PG_HOST=postgres\x00DAGSTER_PG_PASSWORD=hunter2-hunter2"
    error = refusal(pixel_bytes([secret_line]))
    assert str(error) == (
        f"{FILE_NAME}: line 1 ({secret_line[:40]!r}…) has a single field; "
        "expected 4 tab- or comma-separated fields: B, G, R, label"
    )
    assert "hunter2" not in str(error)



def test_an_error_quotes_only_the_start_of_a_long_header_name():
    name = "x" * 5000
    error = refusal(pixel_bytes([f"B,G,R,{name}", "1,2,3,1"]))
    assert f"but {name[:40]!r}… is not a column name" in error.problem
    assert len(str(error)) < 400


def test_a_rejected_row_quotes_only_the_start_of_a_long_field_and_keeps_it_whole():
    field = "9" * 5000  # a whole number, too long for a float: out of range
    parsed = parse(pixel_bytes(["74,85,123,1", f"74,{field},123,1"]))
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert outcome.rejected["reasons"].tolist() == [
        f"{FILE_NAME} line 2: G={field[:40]!r}… is outside 0-255 [out_of_range]"
    ]
    assert outcome.rejected["G"].tolist() == [field]


@pytest.mark.parametrize(
    ("content", "line", "bad_byte"),
    [
        (b"74\t85\t\xff\t1\n", 1, 6),  # "74\t85\t" is 6 bytes
        ("B\tG\tR\tlabel\nrouge\t\u00e9\t1\t2\n".encode("latin-1"), 2, 18),  # len("B\tG\tR\tlabel\nrouge\t")
        ("74\t85\t123\t1\n".encode("utf-16"), 1, 0),  # starts with the UTF-16 BOM \xff\xfe
        (b"\xc3", 1, 0),  # a two-byte sequence cut short
        (b"74\t85\t123\t1\r\n74\t85\t123\t1\r74\t85\t123\t1\n\xe9", 4, 37),  # CR LF, CR and LF each end a line
        (b"\xef\xbb\xbf74\t85\t123\t1\n\xff", 2, 15),  # counted from the file's first byte, its BOM included
    ],
    ids=["stray-0xff", "latin-1", "utf-16", "truncated-sequence", "fourth-line", "after-a-bom"],
)
def test_non_utf8_bytes_are_refused_naming_line_and_byte(content, line, bad_byte):
    error = refusal(content)
    assert str(error) == f"{FILE_NAME}: is not UTF-8 text (line {line}, byte {bad_byte})"


def test_a_gzip_file_landed_compressed_is_named_as_one():
    error = refusal(gzip.compress(b"74\t85\t123\t1\n"))
    assert str(error) == f"{FILE_NAME}: is not UTF-8 text (line 1, byte 1) (it starts like a gzip file: land it uncompressed)"


def test_pixel_file_error_is_a_value_error_carrying_source_and_problem():
    error = PixelFileError("local/file.txt", "is broken")
    assert isinstance(error, ValueError)
    assert (error.source, error.problem, str(error)) == ("local/file.txt", "is broken", "local/file.txt: is broken")


# --- accepted files: the raw frame keeps every data line, as text ------------------------------


def assert_good_rows_read_whole(parsed) -> None:
    """GOOD_ROWS, field for field, and every one of them validated as the pixels they say."""
    assert text_fields(parsed.raw) == GOOD_ROWS
    assert parsed.raw["extra_fields"].isna().all()
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert len(outcome.rejected) == 0
    assert outcome.validated[["B", "G", "R"]].values.tolist() == [[74, 85, 123], [12, 200, 0], [255, 0, 17]]
    assert outcome.validated["is_skin"].tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("delimiter", "name"),
    [("\t", "tab"), (",", "comma")],
)
@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["no-bom", "bom"])
def test_tab_and_comma_files_with_any_line_end_and_bom_are_read_whole(delimiter, name, line_end, bom):
    lines = [delimiter.join(row) for row in GOOD_ROWS]
    parsed = parse(bom + pixel_bytes(lines, line_end))

    assert parsed.delimiter == name
    assert parsed.header is None
    assert tuple(parsed.raw.columns) == RAW_COLUMNS
    assert parsed.raw["line_number"].tolist() == [1, 2, 3]
    # No BOM character on the first field and no carriage return on the last one.
    assert_good_rows_read_whole(parsed)


def test_the_last_line_needs_no_line_end():
    parsed = parse(pixel_bytes(tab_lines()).rstrip(b"\n"))
    assert text_fields(parsed.raw) == GOOD_ROWS


def test_comma_files_may_have_spaces_after_the_commas():
    parsed = parse(pixel_bytes(["74, 85, 123, 1", "12, 200, 0, 2"]))
    assert parsed.delimiter == "comma"
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert len(outcome.rejected) == 0
    assert outcome.validated[["B", "G", "R"]].values.tolist() == [[74, 85, 123], [12, 200, 0]]


@pytest.mark.parametrize(
    "header",
    [
        "B\tG\tR\tlabel",
        "b\tg\tr\tclass",
        "B\tG\tR\ty",
        " B \t G \t R \t Label ",
        "\ufeffB\tG\tR\tlabel",
    ],
    ids=["uci-names", "lower-class", "y", "padded", "bom"],
)
def test_a_header_line_is_skipped_reported_and_loses_no_data_row(header):
    data = tab_lines()
    parsed = parse(pixel_bytes([header, *data]))

    assert parsed.header == header.removeprefix("\ufeff")
    # Data rows keep the line numbers they have in the file: the header is line 1.
    assert parsed.raw["line_number"].tolist() == [2, 3, 4]
    assert text_fields(parsed.raw) == GOOD_ROWS

    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert len(outcome.validated) + len(outcome.rejected) == len(data)
    assert outcome.validated["line_number"].tolist() == [2, 3, 4]


@pytest.mark.parametrize(
    ("header", "unknown"),
    [
        ("B,G,R,lable", "'lable'"),
        ("blue\tgreen\tred\tlabel", "'blue', 'green', 'red'"),
        # Read as a row, the data under it would be taken in B, G, R order: red and blue swapped.
        ("red,green,blue,class", "'red', 'green', 'blue'"),
        ("red,green,blue,target", "'red', 'green', 'blue', 'target'"),  # no name it knows at all
        ("B,G,R,", "an empty name"),
    ],
    ids=["misspelt-label", "colour-words", "rgb-words", "no-known-name", "empty-name"],
)
def test_a_header_with_a_name_it_does_not_know_is_refused_naming_it(header, unknown):
    delimiter = "\t" if "\t" in header else ","
    error = refusal(pixel_bytes([header, delimiter.join(["1", "2", "3", "1"])]))
    verb = "are not column names" if ", " in unknown else "is not a column name"
    assert error.problem == (
        f"line 1 looks like a header ({header!r}) but {unknown} {verb}: "
        "a header names B, G, R and label (or class, y) once each"
    )


@pytest.mark.parametrize("name", ["is_skin", "skin", "Is_Skin"])
def test_a_text_header_naming_a_yes_no_label_is_refused(name):
    """A text label is 1 = skin, 2 = non-skin: read under a name such as is_skin, a 1 would pass as
    "yes" but a 2 as "no" only by the code, and "true" would be rejected row by row."""
    error = refusal(pixel_bytes([f"B,G,R,{name}", "1,2,3,1"]))
    assert error.problem == (
        f"line 1 looks like a header ('B,G,R,{name}') but {name!r} is not a column name: "
        "a header names B, G, R and label (or class, y) once each; is_skin or skin names a true/false label, "
        "which only a Parquet file holds (a text file's label is 1 = skin, 2 = non-skin)"
    )


def test_a_quoted_header_is_read_by_name():
    """pandas' to_csv(quoting=csv.QUOTE_NONNUMERIC) quotes the names, not the numbers."""
    parsed = parse(pixel_bytes(['"R","G","B","label"', "123,85,74,1"]))
    assert parsed.header == '"R","G","B","label"'
    assert parsed.raw[["B", "G", "R", "label"]].iloc[0].tolist() == ["74", "85", "123", "1"]


def test_a_header_line_quoted_whole_is_read_by_name():
    parsed = parse(pixel_bytes(['"R,G,B,label"', "123,85,74,1"]))
    assert parsed.header == '"R,G,B,label"'
    assert parsed.raw[["B", "G", "R", "label"]].iloc[0].tolist() == ["74", "85", "123", "1"]


def test_quoted_values_are_kept_as_written_and_read_by_the_rules_without_their_quotes():
    """pandas' to_csv(quoting=csv.QUOTE_ALL) and some exports quote every field, numbers too."""
    frame = pd.DataFrame({"R": [123, 300, 12], "G": [85, 85, 20], "B": [74, 74, 10], "label": [1, 1, 2]})
    content = frame.to_csv(index=False, quoting=csv.QUOTE_ALL).encode()
    assert content.startswith(b'"R","G","B","label"\n"123","85","74","1"')
    parsed = parse(content)
    assert parsed.raw[["B", "G", "R", "label"]].values.tolist() == [
        ['"74"', '"85"', '"123"', '"1"'], ['"74"', '"85"', '"300"', '"1"'], ['"10"', '"20"', '"12"', '"2"']
    ]
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert outcome.validated[["B", "G", "R", "is_skin"]].values.tolist() == [[74, 85, 123, True], [10, 20, 12, False]]
    # The reason quotes the field as the file has it.
    assert outcome.rejected["reasons"].tolist() == [f"{FILE_NAME} line 3: R='\"300\"' is outside 0-255 [out_of_range]"]


def test_the_rules_read_a_field_wholly_in_quotes_as_its_text_and_any_other_quote_as_written():
    parsed = parse(b'74,"85",123,"1"\n"1",2,"3"\n"a ""b""",2,3,1\n" 7 ",8,9,2\n"7"4,8,9,2\n"",8,9,2\n')
    assert parsed.raw[["B", "G", "R", "label"]].values.tolist() == [
        ["74", '"85"', "123", '"1"'], ['"1"', "2", '"3"', None], ['"a ""b"""', "2", "3", "1"],
        ['" 7 "', "8", "9", "2"], ['"7"4', "8", "9", "2"], ['""', "8", "9", "2"],
    ]
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert outcome.validated[["B", "G", "R", "is_skin"]].values.tolist() == [[74, 85, 123, True], [7, 8, 9, False]]
    assert outcome.rejected["rules"].tolist() == ["wrong_field_count", "not_an_integer", "not_an_integer", "missing_value"]
    assert outcome.rejected["reasons"].str.split(": ", n=1).str[1].tolist()[1:] == [
        "B='\"a \"\"b\"\"\"' is not a whole number [not_an_integer]",
        "B='\"7\"4' is not a whole number [not_an_integer]",
        "B is empty [missing_value]",
    ]


def test_a_first_line_of_words_naming_no_column_is_a_row_the_rules_judge():
    """A line without a known column name is not taken for a header: the rules reject it, kept."""
    parsed = parse(pixel_bytes(["n/a\tn/a\tn/a\tn/a", *tab_lines()]))
    assert parsed.header is None
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert outcome.rejected["line_number"].tolist() == [1]
    assert outcome.rejected["rules"].tolist() == ["not_an_integer"]
    assert len(outcome.validated) == len(GOOD_ROWS)


def written_in(order: str, rows=GOOD_ROWS) -> list[tuple]:
    """GOOD_ROWS-style (B, G, R, label) rows as a file with columns in `order` (e.g. "RGBL") holds them."""
    position = {"B": 0, "G": 1, "R": 2, "L": 3}
    return [tuple(row[position[column]] for column in order) for row in rows]


@pytest.mark.parametrize(
    ("header", "order", "delimiter"),
    [
        ("R,G,B,label", "RGBL", ","),
        ("r\tg\tb\tclass", "RGBL", "\t"),
        ("Label\tR\tB\tG", "LRBG", "\t"),
        (" y , G , R , B ", "LGRB", ","),
        ("\ufeffR,G,B,label", "RGBL", ","),
    ],
    ids=["rgb-comma", "rgb-tab-class", "label-first-tab", "padded-y", "bom"],
)
def test_a_header_s_column_order_is_honoured(header, order, delimiter):
    """A CSV exported in another column order is read by its header's names, not by position."""
    lines = [header, *(delimiter.join(row) for row in written_in(order))]
    parsed = parse(pixel_bytes(lines))

    assert parsed.header == header.removeprefix("\ufeff")
    assert tuple(parsed.raw.columns) == RAW_COLUMNS
    assert parsed.raw["line_number"].tolist() == [2, 3, 4]
    assert_good_rows_read_whole(parsed)


def test_an_rgb_export_is_not_read_as_bgr():
    """The reviewer's case: `R,G,B,label` then `200,100,50,1` is R=200, B=50."""
    parsed = parse(pixel_bytes(["R,G,B,label", "200,100,50,1"]))
    assert text_fields(parsed.raw) == [("50", "100", "200", "1")]


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("B,B,R,label", "names B twice ('B', 'B') and has no G column"),
        ("R\tG\tr\tlabel", "names R twice ('R', 'r') and has no B column"),
        ("B,G,R,label,class", "names label twice ('label', 'class')"),
        ("B\tG\tR\tlabel\ty", "names label twice ('label', 'y')"),
        ("R,G,B", "has no label column"),
        ("label,B,G", "has no R column"),
        ("G,G,label,label", "names G twice ('G', 'G') and names label twice ('label', 'label') and has no B column and has no R column"),
    ],
    ids=["b-twice", "r-twice-any-case", "two-label-names", "five-names-tab", "no-label", "no-r", "all-wrong"],
)
def test_a_header_naming_a_column_twice_or_missing_one_is_refused(header, problem):
    delimiter = "\t" if "\t" in header else ","
    error = refusal(pixel_bytes([header, delimiter.join(["1"] * len(header.split(delimiter)))]))
    expected = f"line 1 is a header ({header!r}) that {problem}; expected each of B, G, R, label once"
    assert error.problem == expected
    assert str(error) == f"{FILE_NAME}: {expected}"
    assert error.source == FILE_NAME


def test_a_rejected_row_after_a_reordered_header_keeps_its_line_number_and_column():
    lines = ["R,G,B,label", "123,85,74,1", "300,1,2,1", "0,200,12,2", "17,0,255,7"]
    outcome = validate_pixels(parse(pixel_bytes(lines)).raw, FILE_NAME)

    assert outcome.validated["line_number"].tolist() == [2, 4]
    assert outcome.validated[["B", "G", "R"]].values.tolist() == [[74, 85, 123], [12, 200, 0]]
    assert outcome.rejected["line_number"].tolist() == [3, 5]
    assert outcome.rejected["reasons"].iat[0] == f"{FILE_NAME} line 3: R='300' is outside 0-255 [out_of_range]"
    assert outcome.rejected["reasons"].iat[1].startswith(f"{FILE_NAME} line 5: label='7' ")
    assert outcome.rejected[["B", "G", "R"]].values.tolist() == [["2", "1", "300"], ["255", "0", "17"]]


@pytest.mark.parametrize("delimiter", ["\t", ","], ids=["tab", "comma"])
def test_a_ragged_file_with_a_reordered_header_is_read_by_name(delimiter):
    """Lines of other lengths take the line-by-line path; it must honour the header too."""
    rows = written_in("RLBG")
    lines = [
        delimiter.join(["R", "label", "B", "G"]),
        delimiter.join(rows[0]),
        delimiter.join(rows[1][:3]),  # a short line: G is missing
        delimiter.join([*rows[2], "9"]),  # a fifth field
        delimiter.join(rows[0]),
    ]
    parsed = parse(pixel_bytes(lines))

    assert parsed.raw["line_number"].tolist() == [2, 3, 4, 5]
    assert text_fields(parsed.raw) == [GOOD_ROWS[0], ("12", None, "0", "2"), GOOD_ROWS[2], GOOD_ROWS[0]]
    assert parsed.raw["extra_fields"].tolist() == [None, None, "9", None]

    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert len(outcome.validated) + len(outcome.rejected) == 4  # nothing lost
    assert outcome.validated["line_number"].tolist() == [2, 5]
    assert outcome.validated[["B", "G", "R"]].values.tolist() == [[74, 85, 123], [74, 85, 123]]
    assert outcome.rejected["line_number"].tolist() == [3, 4]
    assert outcome.rejected["rules"].tolist() == ["wrong_field_count", "wrong_field_count"]


@pytest.mark.parametrize(
    ("last_line", "fields"),
    [
        ("7\t8\t9", ("7", "8", "9", None)),
        ("7\t8", ("7", "8", None, None)),
        ("7", ("7", None, None, None)),
        ("7\t8\t9\t", ("7", "8", "9", "")),
    ],
    ids=["three-fields", "two-fields", "one-field", "empty-label"],
)
def test_a_truncated_last_line_is_kept_for_the_rules(last_line, fields):
    content = pixel_bytes(tab_lines()) + last_line.encode()  # cut off before its line end
    parsed = parse(content)

    assert parsed.raw["line_number"].tolist() == [1, 2, 3, 4]
    assert text_fields(parsed.raw)[-1] == fields

    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert outcome.validated["line_number"].tolist() == [1, 2, 3]
    assert outcome.rejected["line_number"].tolist() == [4]
    expected_rule = "missing_value" if len(last_line.split("\t")) == 4 else "wrong_field_count"
    assert outcome.rejected["rules"].tolist() == [expected_rule]
    assert outcome.rejected["reasons"].iat[0].startswith(f"{FILE_NAME} line 4: ")


@pytest.mark.parametrize(
    ("line", "extra"),
    [
        ("7\t8\t9\t1\t5", "5"),
        ("7\t8\t9\t1\t5\t6", "5\t6"),
        ("7\t8\t9\t1\t", ""),  # a trailing delimiter is a fifth, empty field
    ],
    ids=["five-fields", "six-fields", "trailing-delimiter"],
)
def test_fields_past_the_fourth_are_kept_in_extra_fields(line, extra):
    parsed = parse(pixel_bytes([*tab_lines(), line]))
    assert parsed.raw["extra_fields"].tolist() == [None, None, None, extra]
    assert text_fields(parsed.raw)[-1] == ("7", "8", "9", "1")
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert outcome.rejected["rules"].tolist() == ["wrong_field_count"]


def test_a_field_of_megabytes_is_kept_whole_for_the_rules():
    giant = "x" * 3_000_000  # longer than the block Arrow's CSV reader takes at a time
    parsed = parse(pixel_bytes([*tab_lines(), f"7\t{giant}\t9\t1"]))
    assert text_fields(parsed.raw)[-1] == ("7", giant, "9", "1")
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert outcome.rejected["rules"].tolist() == ["not_an_integer"]
    assert len(outcome.validated) == len(tab_lines())


def test_trailing_blank_lines_are_not_rows_but_inner_blank_lines_are():
    parsed = parse(pixel_bytes([tab_lines()[0], "", tab_lines()[1], "", "  ", ""]))
    assert parsed.raw["line_number"].tolist() == [1, 2, 3]
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert outcome.rejected["line_number"].tolist() == [2]
    assert outcome.rejected["rules"].tolist() == ["wrong_field_count"]


@pytest.mark.parametrize("header", [[], ["B\tG\tR\tlabel"]], ids=["no-header", "header"])
def test_leading_blank_lines_are_not_rows_and_line_numbers_still_count_them(header):
    parsed = parse(pixel_bytes(["", "  ", *header, *tab_lines()[:2]]))
    first = 3 + len(header)
    assert parsed.raw["line_number"].tolist() == [first, first + 1]
    assert text_fields(parsed.raw) == [tuple(line.split("\t")) for line in tab_lines()[:2]]
    assert (parsed.header is not None) == bool(header)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\n\nB,B,R,label\n1,2,3,1\n", "line 3 is a header ('B,B,R,label') that names B twice"),
        (b"\n\n1;2;3;1\n", "line 3 is separated by semicolons"),
    ],
    ids=["header", "delimiter"],
)
def test_after_leading_blank_lines_a_file_level_error_names_the_line_in_the_file(content, message):
    with pytest.raises(PixelFileError, match=re.escape(message)):
        parse(content)


def test_a_last_line_of_empty_fields_is_a_rejected_row_not_a_blank_line():
    parsed = parse(pixel_bytes([tab_lines()[0], "\t\t\t", ""]))
    assert parsed.raw["line_number"].tolist() == [1, 2]
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert outcome.rejected["line_number"].tolist() == [2]
    assert outcome.rejected["rules"].tolist() == ["missing_value"]


@pytest.mark.parametrize("odd_character", ["\x0c", "\x0b", "\x1c", "\x85", "\u2028"])
def test_only_line_feeds_and_carriage_returns_end_a_line(odd_character):
    """Form feeds, NEL, U+2028 etc. inside a field must not split the line and shift line numbers."""
    lines = [tab_lines()[0], f"4\t5{odd_character}6\t2", tab_lines()[1]]
    parsed = parse(pixel_bytes(lines))

    assert parsed.raw["line_number"].tolist() == [1, 2, 3]
    assert text_fields(parsed.raw)[1] == ("4", f"5{odd_character}6", "2", None)
    outcome = validate_pixels(parsed.raw, FILE_NAME)
    assert outcome.validated["line_number"].tolist() == [1, 3]
    assert outcome.rejected["line_number"].tolist() == [2]


# --- file identity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "sha256"),
    [
        # FIPS 180-2 test vectors.
        (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ],
)
def test_a_pixel_file_knows_its_sha256(content, sha256):
    assert PixelFile(source=FILE_NAME, content=content).sha256 == sha256


# --- the bundled UCI copy ---------------------------------------------------------------------


def test_the_bundled_file_is_the_published_uci_file(bundled_uci):
    assert BUNDLED_UCI_SHA256 == UCI_SHA256
    assert bundled_uci.sha256 == UCI_SHA256
    assert bundled_uci.source == BUNDLED_UCI_URI == "package://skinseg_assets/data/Skin_NonSkin.txt"


def test_the_bundled_file_parses_to_every_uci_row(bundled_uci, bundled_parsed):
    parsed = bundled_parsed

    assert len(parsed.raw) == UCI_ROWS == bundled_uci.content.count(b"\n")
    assert parsed.delimiter == "tab"
    assert parsed.header is None
    assert parsed.raw["line_number"].iat[0] == 1
    assert parsed.raw["line_number"].iat[-1] == UCI_ROWS
    assert parsed.raw["extra_fields"].isna().all()
    # The README's first row: B=74, G=85, R=123, skin.
    assert text_fields(parsed.raw.head(1)) == [("74", "85", "123", "1")]
    assert (parsed.raw["label"] == "1").sum() == UCI_SKIN_ROWS


def _bundle_in(folder: Path, content: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `read_bundled_uci` find `content` as the packaged gzip file."""
    (folder / "data").mkdir()
    (folder / "data" / "Skin_NonSkin.txt.gz").write_bytes(gzip.compress(content, compresslevel=1))

    def files(package: str) -> Path:
        assert package == "skinseg_assets"
        return folder

    monkeypatch.setattr(source, "resources", SimpleNamespace(files=files))


@pytest.mark.parametrize(
    "damage",
    [
        lambda content: content.replace(b"74\t85\t123\t1\n", b"74\t85\t124\t1\n", 1),
        lambda content: content[:-12],
        lambda content: content + b"1\t2\t3\t1\n",
    ],
    ids=["one-value-changed", "rows-missing", "row-added"],
)
def test_a_damaged_bundled_copy_is_refused(damage, bundled_uci, tmp_path, monkeypatch):
    damaged = damage(bundled_uci.content)
    assert damaged != bundled_uci.content
    _bundle_in(tmp_path, damaged, monkeypatch)

    with pytest.raises(PixelFileError) as raised:
        read_bundled_uci()

    message = str(raised.value)
    assert raised.value.source == BUNDLED_UCI_URI
    assert f"expected {UCI_SHA256}" in message
    assert f"sha256 is {hashlib.sha256(damaged).hexdigest()}" in message
    assert "the bundled copy is damaged" in message


def test_an_intact_bundled_copy_is_read_through_package_resources(bundled_uci, tmp_path, monkeypatch):
    """The same fake resource location accepts the true bytes, so the refusals above are about content."""
    _bundle_in(tmp_path, bundled_uci.content, monkeypatch)
    assert read_bundled_uci().content == bundled_uci.content


# --- Parquet pixel files: the same raw text fields, judged by the same rules ---------------------


def parquet_bytes(**columns) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def parse_parquet(content: bytes):
    return parse_pixel_file(PixelFile(source="pixels.parquet", content=content))


def test_a_parquet_file_becomes_the_same_text_fields():
    parsed = parse_parquet(parquet_bytes(B=[74, 1], G=[85.0, 2.5], R=[123, 3], label=[1, 2]))
    assert text_fields(parsed.raw) == [("74", "85", "123", "1"), ("1", "2.5", "3", "2")]
    assert parsed.raw["line_number"].tolist() == [1, 2] and parsed.delimiter == "parquet"
    outcome = validate_pixels(parsed.raw, "pixels.parquet")
    assert len(outcome.validated) + len(outcome.rejected) == 2  # nothing lost
    assert outcome.rejected["reasons"].tolist() == ["pixels.parquet line 2: G='2.5' is not a whole number [not_an_integer]"]


def test_a_boolean_is_skin_column_with_nulls_is_coded_and_the_null_is_an_empty_field():
    import pyarrow as pa

    parsed = parse_parquet(parquet_bytes(B=[74, 1, 5], G=[85, 2, 5], R=[123, 3, 5], is_skin=pa.array([True, False, None])))
    assert parsed.raw["label"].tolist() == ["1", "2", ""]
    outcome = validate_pixels(parsed.raw, "pixels.parquet")
    assert outcome.validated["is_skin"].tolist() == [True, False]
    assert outcome.rejected["reasons"].tolist() == ["pixels.parquet line 3: label is empty [missing_value]"]


@pytest.mark.parametrize(
    "columns, problem",
    [
        ({"B": [74], "G": [85], "label": [1]}, "has columns ['B', 'G', 'label']; missing R (expected B, G, R, label)"),
        ({"B": [74], "G": [85], "R": [123]}, "missing label (expected B, G, R, label)"),
        ({"B": [74], "G": [85], "R": [123], "label": [1], "id": [7]}, "has extra columns 'id' (expected only B, G, R and label)"),
        ({"B": [74], "G": [85], "R": [123], "is_skin": [1]}, "column is_skin is int64, expected true/false"),
        ({"B": [], "G": [], "R": [], "label": []}, "is empty: no pixel rows"),
        (
            {"B": [74], "G": [85], "R": [123], "b": [9], "label": [1]},
            "has columns 'B', 'b', whose names differ only in case: which one to read is unclear",
        ),
    ],
    ids=["missing-channel", "missing-label", "extra-column", "coded-is-skin", "empty", "names-differing-in-case"],
)
def test_a_parquet_file_of_the_wrong_shape_is_refused_by_name(columns, problem):
    with pytest.raises(PixelFileError, match=re.escape(problem)) as refused:
        parse_parquet(parquet_bytes(**columns))
    assert refused.value.source == "pixels.parquet"


def test_a_parquet_error_quotes_only_the_start_of_long_column_names_and_the_first_ten():
    long_name = "x" * 5000
    columns = {"B": [74], "G": [85], "R": [123], "label": [1], long_name: [0], **{f"extra_{i}": [0] for i in range(12)}}
    with pytest.raises(PixelFileError) as refused:
        parse_parquet(parquet_bytes(**columns))
    shown = ", ".join([f"{long_name[:40]!r}…"] + [repr(f"extra_{i}") for i in range(9)])
    assert refused.value.problem == f"has extra columns {shown} and 3 more (expected only B, G, R and label)"


def test_the_index_pandas_writes_with_a_filtered_frame_is_not_an_extra_column():
    import pandas as pd

    frame = pd.DataFrame({"B": [74, 250, 5], "G": [85, 250, 5], "R": [123, 250, 5], "label": [1, 2, 1]})
    buffer = io.BytesIO()
    frame[frame["B"] > 10].to_parquet(buffer)  # index 0, 1 is stored as __index_level_0__
    parsed = parse_parquet(buffer.getvalue())
    assert parsed.raw[["B", "G", "R", "label"]].values.tolist() == [["74", "85", "123", "1"], ["250", "250", "250", "2"]]


def test_a_damaged_parquet_file_is_refused_by_name():
    with pytest.raises(PixelFileError, match=r"pixels\.parquet: is not a readable Parquet file"):
        parse_parquet(b"PAR1 not really")
