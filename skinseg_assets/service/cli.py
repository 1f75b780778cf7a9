"""`skinseg`: the serving champion from the command line (same loading and scoring as the service).

    skinseg predict [PIXELS.csv]          B,G,R rows (file or stdin) -> B,G,R,label,skin_probability
    skinseg segment IMAGE -o MASK.png     skin mask of a photograph (and --overlay OVERLAY.png)
    skinseg serve [--host H] [--port P]   the prediction service (FastAPI + uvicorn)

The champion comes from the deployment's blob store (SKINSEG_DEPLOYMENT, SKINSEG_DATA_DIR,
SKINSEG_GCS_BUCKET, as for the Dagster code location).
"""

import argparse
import csv
import io
import re
import sys
from pathlib import Path

import numpy as np

from skinseg_assets.pixels.images import MAX_IMAGE_PIXELS, ImageError
from skinseg_assets.pixels.rules import CHANNELS, WHOLE_NUMBER
from skinseg_assets.pixels.source import HEADER_COLUMNS, PixelFileError, pixel_text
from skinseg_assets.resources.champion_store import ChampionStore
from skinseg_assets.service.scoring import (
    NO_SERVABLE_CHAMPION,
    ChampionSource,
    ServingModel,
    blob_store_from_environment,
    segment_image_bytes,
)

PREDICT_CHUNK = 1 << 20
PARSE_BLOCK = 1 << 16


class PixelInputError(ValueError):
    """Bad input (exit 2): a pixel row that is not three whole numbers 0-255, or a file named on
    the command line that cannot be read or written."""


def channel_positions(fields: list[str], source: str, line_number: int) -> tuple[int, ...]:
    """Where a header line puts B, G and R (each must be there once; other columns are ignored).
    Names are read as ingestion reads them (`source.HEADER_COLUMNS`)."""
    columns = [HEADER_COLUMNS.get(field.strip().lower()) for field in fields]
    positions = []
    for channel in CHANNELS:
        found = [position for position, column in enumerate(columns) if column == channel]
        if len(found) != 1:
            raise PixelInputError(
                f"{source} line {line_number}: the header {','.join(fields)!r} has {len(found)} {channel} columns; "
                "it needs exactly one each of B, G and R"
            )
        positions.append(found[0])
    return tuple(positions)


def parse_pixel_rows(text: str, source: str) -> np.ndarray:
    """(N, 3) B, G, R from comma- or tab-separated text: header optional, extra columns (such as a label) ignored.

    Without a header the first three fields are B, G, R; a header (a first line naming columns, as
    ingestion accepts them) says which fields they are, in any order."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t")
    except csv.Error:  # one column, or empty: let the row checks explain
        dialect = csv.excel
    blocks, rows = [], []  # rows as uint8 blocks: a list of Python ints per row would take ~170 bytes
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), dialect)  # a spreadsheet's UTF-8 BOM
    seen_a_row = False
    positions: tuple[int, ...] = (0, 1, 2)
    for fields in reader:
        line_number = reader.line_num  # the text line a record ends on (a quoted field may span lines)
        if not fields or not "".join(fields).strip():
            continue
        if not seen_a_row:
            seen_a_row = True
            if any(field.strip().lower() in HEADER_COLUMNS for field in fields):
                positions = channel_positions(fields, source, line_number)
                continue
        if len(fields) <= max(positions):
            raise PixelInputError(
                f"{source} line {line_number}: expected B, G, R separated by commas or tabs, got {len(fields)} field(s)"
            )
        values = []
        for name, position in zip(CHANNELS, positions, strict=True):
            written = fields[position].strip()
            if not re.fullmatch(WHOLE_NUMBER, written):  # the rule ingestion applies ("1_0" is not 10)
                raise PixelInputError(f"{source} line {line_number}: {name}={written!r} is not a whole number")
            value = int(written.split(".")[0])  # a zero fraction ("12.0") adds nothing
            if not 0 <= value <= 255:
                raise PixelInputError(f"{source} line {line_number}: {name}={value} is outside 0-255")
            values.append(value)
        rows.append(values)
        if len(rows) == PARSE_BLOCK:
            blocks.append(np.array(rows, dtype=np.uint8))
            rows = []
    blocks.append(np.array(rows, dtype=np.uint8).reshape(-1, 3))
    return np.concatenate(blocks)


def read_input(path: Path) -> bytes:
    """The bytes of a file the user named; a file that cannot be read is bad input (exit 2)."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise PixelInputError(f"{path}: cannot be read ({error.strerror or error})") from None


def write_output(path: Path, data: bytes) -> None:
    """Write a file the user named; a path that cannot be written is a bad argument (exit 2)."""
    try:
        path.write_bytes(data)
    except OSError as error:
        raise PixelInputError(f"{path}: cannot be written ({error.strerror or error})") from None


def _champion() -> ServingModel:
    return ChampionSource(ChampionStore(blob_store_from_environment()), ttl_seconds=float("inf")).get()


def predict(arguments, stdout) -> int:
    source = "stdin" if arguments.pixels == "-" else arguments.pixels
    data = sys.stdin.buffer.read() if arguments.pixels == "-" else read_input(Path(source))
    bgr = parse_pixel_rows(pixel_text(data, source), source)  # decoded as ingestion decodes files
    champion = _champion()
    writer = csv.writer(stdout, lineterminator="\n")
    writer.writerow(["B", "G", "R", "label", "skin_probability"])
    for start in range(0, len(bgr), PREDICT_CHUNK):
        chunk = bgr[start : start + PREDICT_CHUNK]
        is_skin, probability = champion.predict(chunk)
        for (b, g, r), skin, p in zip(chunk.tolist(), is_skin, probability, strict=True):
            writer.writerow([b, g, r, "skin" if skin else "non-skin", f"{p:.6f}"])
    print(f"{len(bgr)} pixels scored by champion {champion.manifest.name}", file=sys.stderr)
    return 0


def segment(arguments, stdout) -> int:
    champion = _champion()
    result = segment_image_bytes(champion, read_input(Path(arguments.image)), max_pixels=MAX_IMAGE_PIXELS)
    write_output(Path(arguments.output), result.mask_png())
    if arguments.overlay:
        write_output(Path(arguments.overlay), result.overlay_png())
    print(
        f"{arguments.output}: skin share {result.skin_share:.4f} "
        f"(champion {champion.manifest.name}, {champion.scorer} scorer)",
        file=stdout,
    )
    return 0


def serve(arguments, stdout) -> int:
    import uvicorn

    uvicorn.run("skinseg_assets.service.app:create_app", factory=True, host=arguments.host, port=arguments.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skinseg", description="Skin segmentation with the production champion.")
    commands = parser.add_subparsers(dest="command", required=True)
    predict_parser = commands.add_parser("predict", help="score B,G,R pixels (CSV or TSV; header and extra columns allowed)")
    predict_parser.add_argument("pixels", nargs="?", default="-", help="file of B,G,R rows; '-' or nothing: stdin")
    predict_parser.set_defaults(run=predict)
    segment_parser = commands.add_parser("segment", help="write the skin mask of a photograph as PNG")
    segment_parser.add_argument("image", help="a photograph (PNG, JPEG, ...)")
    segment_parser.add_argument("-o", "--output", required=True, help="mask PNG to write (white = skin)")
    segment_parser.add_argument("--overlay", help="also write the photo with skin tinted green")
    segment_parser.set_defaults(run=segment)
    serve_parser = commands.add_parser("serve", help="run the prediction service")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.set_defaults(run=serve)
    return parser


def main(argv: list[str] | None = None, stdout=None) -> int:
    stdout = stdout or sys.stdout
    arguments = build_parser().parse_args(argv)
    try:
        return arguments.run(arguments, stdout)
    except (PixelInputError, PixelFileError, ImageError) as error:
        print(f"skinseg {arguments.command}: {error}", file=sys.stderr)
        return 2
    except NO_SERVABLE_CHAMPION as error:
        print(f"skinseg {arguments.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
