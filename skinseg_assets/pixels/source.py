"""Reading pixel files in the UCI Skin Segmentation format into a lossless raw frame.

The raw frame keeps every field as the text it was read as, so that nothing is lost before the
validation rules decide which rows are usable. File-level problems (empty file, wrong delimiter,
wrong number of columns) raise `PixelFileError`; row-level problems are left for the rules.
"""

import codecs
import gzip
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from skinseg_assets.pixels.colours import CHANNELS

GZIP_MAGIC = b"\x1f\x8b"  # the first two bytes of every gzip file
# Error messages quote at most this much of a line: enough to recognise it, and a long line of a
# file that is not pixel data does not end up whole in the run's log (a shorter one still does:
# what keeps other files out is read_pixel_source's name rule).
QUOTED_CHARACTERS = 40


def quoted_text(text: str) -> str:
    """A line's or field's text for a message: escaped, and cut after QUOTED_CHARACTERS."""
    return repr(text[:QUOTED_CHARACTERS]) + ("…" if len(text) > QUOTED_CHARACTERS else "")


def quoted_line(line: str) -> str:
    return quoted_text(line.strip())


def quoted_names(names: list[str], shown: int = 10) -> str:
    """Column names for a message: each quoted (and cut) as quoted_text, at most `shown` of them."""
    listed = ", ".join(quoted_text(name) for name in names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")


PIXEL_FIELDS = (*CHANNELS, "label")
# A header line's names (compared stripped and lower-cased), each the column it stands for. A text
# file's label is coded 1 = skin, 2 = non-skin, so it is not named like a yes/no question: those
# names are for a Parquet file's true/false label column.
HEADER_COLUMNS = {
    "b": "B",
    "g": "G",
    "r": "R",
    **dict.fromkeys(("label", "class", "y"), "label"),
}
PARQUET_BOOLEAN_LABELS = ("is_skin", "skin")
HEADER_NAMES = set(HEADER_COLUMNS)
ACCEPTED_DELIMITERS = {"\t": "tab", ",": "comma"}
SUSPECT_DELIMITERS = {";": "semicolon", "|": "pipe", " ": "space"}

BUNDLED_UCI_NAME = "Skin_NonSkin.txt"
BUNDLED_UCI_SHA256 = "008f1fb6a169498dec54fb5951be6478e5465942cc4f6df3b5dabbe484c9a98f"
BUNDLED_UCI_URI = f"package://skinseg_assets/data/{BUNDLED_UCI_NAME}"

RAW_COLUMNS = ("line_number", *PIXEL_FIELDS, "extra_fields")


class PixelFileError(ValueError):
    """A pixel file whose shape is wrong as a whole; names the file and the problem."""

    def __init__(self, source: str, problem: str):
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class PixelFile:
    """A pixel file's bytes with where they came from."""

    source: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class ParsedPixelFile:
    """The raw frame of one file and what parsing noticed about it."""

    raw: pd.DataFrame
    delimiter: str
    header: str | None


def read_bundled_uci() -> PixelFile:
    """The UCI file shipped inside the package, verified against its published sha256."""
    packed = resources.files("skinseg_assets").joinpath("data", f"{BUNDLED_UCI_NAME}.gz")
    content = gzip.decompress(packed.read_bytes())
    pixel_file = PixelFile(source=BUNDLED_UCI_URI, content=content)
    if pixel_file.sha256 != BUNDLED_UCI_SHA256:
        raise PixelFileError(
            BUNDLED_UCI_URI,
            f"sha256 is {pixel_file.sha256}, expected {BUNDLED_UCI_SHA256}: the bundled copy is damaged",
        )
    return pixel_file


def _sniff_delimiter(source: str, first_line: str, line_number: int) -> str:
    for delimiter in ACCEPTED_DELIMITERS:
        if delimiter in first_line:
            return delimiter
    for delimiter, name in SUSPECT_DELIMITERS.items():
        if delimiter in first_line.strip():
            raise PixelFileError(
                source,
                f"line {line_number} is separated by {name}s ({quoted_line(first_line)}); "
                "expected tab- or comma-separated B, G, R, label",
            )
    raise PixelFileError(
        source,
        f"line {line_number} ({quoted_line(first_line)}) has a single field; "
        "expected 4 tab- or comma-separated fields: B, G, R, label",
    )


# A field wholly in double quotes, as CSV writers quote ("" inside stands for one ").
QUOTED_FIELD = re.compile(r'"((?:[^"]|"")*)"')


def field_text(written: str) -> str:
    """What a field says: its text without surrounding spaces and, if it is wholly in double
    quotes (pandas' QUOTE_ALL, some exports), without the quotes ("" read as "). The raw frame
    keeps the field as written; the rules read this."""
    text = written.strip()
    quoted = QUOTED_FIELD.fullmatch(text)
    return quoted.group(1).replace('""', '"').strip() if quoted else text


def _column_name(field: str) -> str:
    """A header field as a name: case, surrounding space and quotes ("R", as pandas may quote it) ignored.

    Stray quotes too: a header line quoted whole (`"R,G,B,label"`) splits into `"R` ... `label"`,
    and read as a row it would let the rows below it be taken in B, G, R order."""
    return field.strip().strip("\"'").strip().lower()


def _is_header(fields: list[str]) -> bool:
    names = {_column_name(field) for field in fields}
    return bool(names) and names <= HEADER_NAMES


# A header's word: letters, then letters, digits-free underscores or spaces ("red", "is_skin", "skin tone").
HEADER_WORD = re.compile(r"[^\W\d_][^\W\d]*(?: [^\W\d]+)*")


def _looks_like_header(fields: list[str]) -> bool:
    """Every field a word or empty, some a word: a header with names it does not know. Read as a
    row, it would be rejected quietly, and the columns under it taken in B, G, R order."""
    names = [_column_name(field) for field in fields]
    return any(names) and all(HEADER_WORD.fullmatch(name) for name in names if name)


def _header_order(source: str, header: str, fields: list[str], line_number: int) -> tuple[str, ...]:
    """The column (B, G, R or label) each field of a header line names, in the header's order.

    Refuses a header that names a column twice or leaves one out: its rows could not be read
    without guessing which field is which.
    """
    order = tuple(HEADER_COLUMNS[_column_name(field)] for field in fields)
    twice = [column for column in PIXEL_FIELDS if order.count(column) > 1]
    missing = [column for column in PIXEL_FIELDS if column not in order]
    if twice or missing:
        problems = [
            f"names {column} twice ({', '.join(quoted_text(f.strip()) for f, c in zip(fields, order) if c == column)})"
            for column in twice
        ] + [f"has no {column} column" for column in missing]
        raise PixelFileError(
            source,
            f"line {line_number} is a header ({quoted_line(header)}) that {' and '.join(problems)}; "
            "expected each of B, G, R, label once",
        )
    return order


def pixel_text(content: bytes, source: str) -> str:
    """A text pixel file's content: UTF-8 (a leading byte order mark dropped), every line ended by LF.

    Only CR LF, LF and CR end a line: str.splitlines() would also split at form feeds, NEL,
    U+2028 and the like inside a field, shifting every later line number.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        compressed = " (it starts like a gzip file: land it uncompressed)" if content[:2] == GZIP_MAGIC else ""
        # Counted in the file's bytes: the codec's offsets start after a byte order mark.
        offset = error.start + (len(codecs.BOM_UTF8) if content.startswith(codecs.BOM_UTF8) else 0)
        line = len(re.findall(rb"\r\n|\r|\n", content[:offset])) + 1
        raise PixelFileError(source, f"is not UTF-8 text (line {line}, byte {offset}){compressed}") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_pixel_file(pixel_file: PixelFile) -> ParsedPixelFile:
    """Split a pixel file into a raw frame of text fields, one row per line.

    Columns: `line_number` (1-based, in the file), B, G, R, label (text, None where the line is
    short) and `extra_fields` (text past the fourth field, None normally). Without a header the
    fields are B, G, R, label in that order; a header line (e.g. `R,G,B,label`) sets the order.
    """
    source = pixel_file.source
    if source.lower().endswith(".parquet"):
        return parse_parquet_pixel_file(pixel_file)
    text = pixel_text(pixel_file.content, source)
    if not text.strip():
        raise PixelFileError(source, "is empty: no pixel rows")
    # Trailing empty (or space-only) lines are not rows: cut after the last line with content. A
    # line of tabs after the rows is four empty fields of a tab-separated file: a row (rejected).
    last_content = len(text.rstrip(" \n"))
    end_of_last_line = text.find("\n", last_content)
    text = text if end_of_last_line < 0 else text[:end_of_last_line]

    # Leading empty (or space-only) lines are not rows either; line numbers still count them.
    first_content = len(text) - len(text.lstrip(" \n"))
    start_of_first_line = text.rfind("\n", 0, first_content) + 1
    blank_lines = text.count("\n", 0, start_of_first_line)
    text = text[start_of_first_line:]

    first_line, _, rest = text.partition("\n")
    delimiter = _sniff_delimiter(source, first_line, 1 + blank_lines)
    header = None
    first_row = 1 + blank_lines
    order = PIXEL_FIELDS  # the column each field position holds
    header_fields = first_line.split(delimiter)
    if _is_header(header_fields):
        header = first_line
        order = _header_order(source, header, header_fields, first_row)
        first_row += 1
        if "\n" not in text:
            raise PixelFileError(source, f"has a header ({quoted_line(header)}) but no pixel rows")
        text = rest
    elif len(header_fields) == len(PIXEL_FIELDS) and _looks_like_header(header_fields):  # else: the field count is named below
        unknown = [quoted_text(field.strip()) if field.strip() else "an empty name" for field in header_fields if _column_name(field) not in HEADER_NAMES]
        raise PixelFileError(
            source,
            f"line {first_row} looks like a header ({quoted_line(first_line)}) but {', '.join(unknown)} "
            f"{'is not a column name' if len(unknown) == 1 else 'are not column names'}: "
            "a header names B, G, R and label (or class, y) once each"
            + (
                f"; {' or '.join(PARQUET_BOOLEAN_LABELS)} names a true/false label, which only a Parquet file holds "
                "(a text file's label is 1 = skin, 2 = non-skin)"
                if any(_column_name(field) in PARQUET_BOOLEAN_LABELS for field in header_fields)
                else ""
            ),
        )
    expected = len(PIXEL_FIELDS)
    shape_fields = text.partition("\n")[0].split(delimiter)
    if len(shape_fields) != expected:
        which = "a column is missing" if len(shape_fields) < expected else "there is an extra column"
        raise PixelFileError(
            source,
            f"line {first_row} has {len(shape_fields)} fields, expected {expected} "
            f"(B, G, R, label): {which}",
        )

    frame = _read_regular_lines(text, delimiter, order)
    if frame is None:
        # Some line has more or fewer fields: split line by line. A fifth field is kept even
        # when empty (a trailing delimiter), so the rules see it.
        rows = (line.split(delimiter) for line in text.split("\n"))
        padded = [
            row[:expected]
            + [None] * (expected - len(row))
            + [delimiter.join(row[expected:]) if len(row) > expected else None]
            for row in rows
        ]
        frame = pd.DataFrame(padded, columns=[*order, "extra_fields"], dtype=object)
        if order != PIXEL_FIELDS:
            frame = frame[[*PIXEL_FIELDS, "extra_fields"]]
    frame.insert(0, "line_number", np.arange(first_row, first_row + len(frame), dtype=np.int64))
    return ParsedPixelFile(raw=frame, delimiter=ACCEPTED_DELIMITERS[delimiter], header=header)


def _read_regular_lines(text: str, delimiter: str, order: tuple[str, ...] = PIXEL_FIELDS) -> pd.DataFrame | None:
    """The four text fields of every line, if every line has exactly four (None otherwise).

    `order` is the column each field position holds; the frame's columns are B, G, R, label.

    The usual case, read by Arrow's CSV reader (quoting off, nothing trimmed or turned into null):
    a field stays the text it was, and each distinct text is one Python string shared by all its
    rows, so a file of millions of rows takes tens of megabytes, not gigabytes.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    data = text.encode()  # a delimiter or line feed byte never occurs inside a multi-byte character
    codes = np.frombuffer(data, dtype=np.uint8)
    line_ends = np.append(np.flatnonzero(codes == ord("\n")), len(codes))
    delimiter_positions = np.flatnonzero(codes == ord(delimiter))
    per_line = np.diff(np.searchsorted(delimiter_positions, line_ends), prepend=0)
    if not (per_line == len(PIXEL_FIELDS) - 1).all():
        return None
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(data),
            read_options=pa_csv.ReadOptions(column_names=list(order)),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, quote_char=False, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(PIXEL_FIELDS, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid:  # e.g. a line longer than Arrow's block: the line-by-line split takes it
        return None
    frame = table.select(list(PIXEL_FIELDS)).to_pandas(deduplicate_objects=True)
    frame["extra_fields"] = None
    return frame


# Label columns of a Parquet file: coded like the text format (1 = skin, 2 = non-skin), or
# boolean (True = skin), which a column named like a yes/no question (PARQUET_BOOLEAN_LABELS) must be.
PARQUET_CODED_LABELS = ("label", "class", "y")


def parse_parquet_pixel_file(pixel_file: PixelFile) -> ParsedPixelFile:
    """A Parquet pixel file (columns B, G, R and a label) as the same raw frame of text fields.

    `line_number` is the 1-based row number in the file; values keep their text form so the same
    rules judge them as for text files. A boolean label becomes 1 (True) or 2 (False); a null cell
    becomes an empty field. Columns other than these four are refused, as in a text file; the
    index pandas writes with a frame is ignored.
    """
    import io

    import pyarrow.parquet as pq

    source = pixel_file.source
    try:
        table = pq.read_table(io.BytesIO(pixel_file.content))
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise PixelFileError(source, f"is not a readable Parquet file ({error})") from None
    by_lower = {name.lower(): name for name in table.column_names}
    if len(by_lower) < len(table.column_names):
        lower_names = [name.lower() for name in table.column_names]
        clashing = [name for name in table.column_names if lower_names.count(name.lower()) > 1]
        raise PixelFileError(
            source,
            f"has columns {quoted_names(clashing)}, whose names differ only in case: which one to read is unclear",
        )
    labels = [by_lower[name] for name in (*PARQUET_CODED_LABELS, *PARQUET_BOOLEAN_LABELS) if name in by_lower]
    missing = [channel for channel in CHANNELS if channel.lower() not in by_lower]
    if missing or not labels:
        absent = missing + ([] if labels else ["label"])
        raise PixelFileError(
            source,
            f"has columns [{quoted_names(table.column_names)}]; missing {', '.join(absent)} "
            "(expected B, G, R, label)",
        )
    label = labels[0]
    # The index pandas stores beside the data (`df[mask].to_parquet(path)`) is not a column of it.
    pandas_index = {name for name in (table.schema.pandas_metadata or {}).get("index_columns", []) if isinstance(name, str)}
    extra = [
        name
        for name in table.column_names
        if name not in (by_lower["b"], by_lower["g"], by_lower["r"], label) and name not in pandas_index
    ]
    if extra:
        raise PixelFileError(
            source, f"has extra columns {quoted_names(extra)} (expected only B, G, R and {label})"
        )
    if table.num_rows == 0:
        raise PixelFileError(source, "is empty: no pixel rows")
    frame = table.select([by_lower["b"], by_lower["g"], by_lower["r"], label]).to_pandas()
    frame.columns = list(PIXEL_FIELDS)
    is_boolean = _is_boolean(frame["label"])
    if label.lower() in PARQUET_BOOLEAN_LABELS and not is_boolean:
        raise PixelFileError(
            source,
            f"column {label} is {frame['label'].dtype}, expected true/false; "
            "for 1 = skin, 2 = non-skin name it label",
        )
    for column in PIXEL_FIELDS:
        values = frame[column].astype(object)
        if column == "label" and is_boolean:
            values = values.map({True: 1, False: 2})
        frame[column] = values.map(_parquet_text)
    frame["extra_fields"] = None
    frame.insert(0, "line_number", np.arange(1, len(frame) + 1, dtype=np.int64))
    return ParsedPixelFile(raw=frame, delimiter="parquet", header=None)


def _is_boolean(values: pd.Series) -> bool:
    """True/False cells, maybe with nulls (which Arrow hands over as an object column)."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return True
    return values.dtype == object and values.map(lambda value: value is None or isinstance(value, bool)).all()


def _parquet_text(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""  # a null cell is an empty field (missing_value), not a short line
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
