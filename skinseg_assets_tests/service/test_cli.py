import csv
import io
import re

import numpy as np
import pytest
from PIL import Image

from skinseg_assets.pixels.lut import lut_is_skin, segment_rgb
from skinseg_assets.service.cli import main, parse_pixel_rows
from skinseg_assets_tests.champion_fixtures import tree_and_lut


def run(argv, capsys, stdin: str | bytes | None = None, monkeypatch=None):
    if stdin is not None:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="ascii"))  # as under a C locale
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_scores_a_file_with_header_and_labels(champions, tmp_path, capsys):
    pixels = tmp_path / "pixels.csv"
    pixels.write_text("B,G,R,label\n74,85,123,1\n250,250,250,2\n")
    code, out, err = run(["predict", str(pixels)], capsys)
    assert code == 0 and "2 pixels scored by champion v0001" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    _, compiled = tree_and_lut(3)
    expected = lut_is_skin(compiled.table, np.array([[74, 85, 123], [250, 250, 250]]))
    assert [row["label"] == "skin" for row in rows] == expected.tolist()
    assert [(row["B"], row["G"], row["R"]) for row in rows] == [("74", "85", "123"), ("250", "250", "250")]
    assert 0 <= float(rows[0]["skin_probability"]) <= 1


def test_predict_reads_lines_ended_as_ingestion_reads_them(champions, capsys, monkeypatch):
    code, out, _ = run(["predict"], capsys, stdin=b"\xef\xbb\xbf74,85,123\r1,2,3\r\n4,5,6", monkeypatch=monkeypatch)
    assert code == 0 and [row[:3] for row in csv.reader(io.StringIO(out))][1:] == [["74", "85", "123"], ["1", "2", "3"], ["4", "5", "6"]]


def test_predict_reads_tab_separated_stdin(champions, capsys, monkeypatch):
    code, out, _ = run(["predict"], capsys, stdin="74\t85\t123\n", monkeypatch=monkeypatch)
    assert code == 0 and out.splitlines()[0] == "B,G,R,label,skin_probability" and len(out.splitlines()) == 2
    (row,) = csv.DictReader(io.StringIO(out))
    _, compiled = tree_and_lut(3)
    expected_label = "skin" if lut_is_skin(compiled.table, np.array([[74, 85, 123]]))[0] else "non-skin"
    assert (row["B"], row["G"], row["R"], row["label"]) == ("74", "85", "123", expected_label)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3\n4,5,256\n", "line 2: R=256 is outside 0-255"),
        ("1,x,3\n", "line 1: G='x' is not a whole number"),
        ("1,1_0,3\n", "line 1: G='1_0' is not a whole number"),  # Python's int() would read 10
        ("1,\u0662\u0660,3\n", "line 1: G='\u0662\u0660' is not a whole number"),  # ...and 20 from Arabic-Indic digits
        ("1,2,3.5\n", "line 1: R='3.5' is not a whole number"),
        ("1,2," + "9" * 400 + "\n", "line 1: R=" + "9" * 400 + " is outside 0-255"),
        ("1,2\n", "line 1: expected B, G, R separated by commas or tabs, got 2 field(s)"),
        ("1;2;3\n", "line 1: expected B, G, R separated by commas or tabs, got 1 field(s)"),  # as ingestion, no semicolons
    ],
)
def test_bad_pixel_rows_are_named(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_pixel_rows(text, "stdin")


def test_bad_input_exits_2_with_the_reason(champions, capsys, monkeypatch, tmp_path):
    code, _, err = run(["predict", "-"], capsys, stdin="1,2,300\n", monkeypatch=monkeypatch)
    assert code == 2 and "R=300 is outside 0-255" in err
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    for unreadable, reason in ((tmp_path, "Is a directory"), (tmp_path / "gone.csv", "No such file or directory")):
        code, _, err = run(["predict", str(unreadable)], capsys)
        assert code == 2 and f"{unreadable}: cannot be read ({reason})" in err
    code, _, err = run(["predict", str(tmp_path / "photo.png")], capsys)  # decoded as ingestion decodes a file
    assert code == 2 and f"{tmp_path / 'photo.png'}: is not UTF-8 text (line 1, byte 0)" in err
    code, _, err = run(["segment", str(tmp_path / "gone.png"), "-o", str(tmp_path / "mask.png")], capsys)
    assert code == 2 and "gone.png: cannot be read (No such file or directory)" in err
    code, _, err = run(["predict", "-"], capsys, stdin=b"\xff\xfe1,2,3\n", monkeypatch=monkeypatch)
    assert code == 2 and "stdin: is not UTF-8 text (line 1, byte 0)" in err
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "black.png")
    code, _, err = run(["segment", str(tmp_path / "black.png"), "-o", str(tmp_path / "no-such-folder" / "mask.png")], capsys)
    assert code == 2 and f"{tmp_path / 'no-such-folder' / 'mask.png'}: cannot be written (No such file or directory)" in err


def test_whole_numbers_are_read_as_ingestion_reads_them():
    assert parse_pixel_rows("+74,85.0, 123 \n", "stdin").tolist() == [[74, 85, 123]]


def test_rows_are_read_whole_across_the_blocks_they_are_kept_in(monkeypatch):
    from skinseg_assets.service import cli

    monkeypatch.setattr(cli, "PARSE_BLOCK", 4)
    rows = np.random.default_rng(0).integers(0, 256, (10, 3))
    text = "B,G,R\n" + "".join(f"{b},{g},{r}\n" for b, g, r in rows.tolist())
    parsed = parse_pixel_rows(text, "stdin")
    assert parsed.dtype == np.uint8 and parsed.tolist() == rows.tolist()


def test_a_header_after_a_byte_order_mark_or_blank_lines_is_a_header():
    assert parse_pixel_rows("\ufeffB,G,R\n74,85,123\n", "excel.csv").tolist() == [[74, 85, 123]]
    assert parse_pixel_rows("\n\nB\tG\tR\n74\t85\t123\n", "stdin").tolist() == [[74, 85, 123]]


def test_a_header_says_which_field_is_which_channel():
    assert parse_pixel_rows("label,R,G,B\n1,123,85,74\n", "stdin").tolist() == [[74, 85, 123]]
    assert parse_pixel_rows("B,R,G\n10,200,30\n", "stdin").tolist() == [[10, 30, 200]]
    with pytest.raises(ValueError, match=re.escape("stdin line 1: the header 'B,G,label' has 0 R columns; it needs exactly one each of B, G and R")):
        parse_pixel_rows("B,G,label\n1,2,1\n", "stdin")
    with pytest.raises(ValueError, match=re.escape("stdin line 2: expected B, G, R separated by commas or tabs, got 3 field(s)")):
        parse_pixel_rows("label,B,G,R\n1,2,3\n", "stdin")


def test_errors_name_the_text_line_even_after_a_field_spanning_lines():
    with pytest.raises(ValueError, match=re.escape("line 4: R=999 is outside 0-255")):
        parse_pixel_rows('1,2,3\n"4\n",5,6\n7,8,999\n', "stdin")


def test_a_champion_whose_model_file_is_gone_exits_1(champions, data_dir, tmp_path, capsys):
    (data_dir / "blobs" / champions.current().model_key).unlink()
    (tmp_path / "pixels.csv").write_text("74,85,123\n")
    code, _, err = run(["predict", str(tmp_path / "pixels.csv")], capsys)
    assert code == 1 and "model.skops is missing, but v0001 was promoted with sha256" in err


def test_segment_writes_mask_and_overlay(champions, tmp_path, capsys):
    from skimage import data

    photo = data.astronaut()
    Image.fromarray(photo).save(tmp_path / "astronaut.png")
    code, out, _ = run(
        ["segment", str(tmp_path / "astronaut.png"), "-o", str(tmp_path / "mask.png"), "--overlay", str(tmp_path / "overlay.png")],
        capsys,
    )
    assert code == 0 and "champion v0001, lookup-table scorer" in out
    mask = np.asarray(Image.open(tmp_path / "mask.png")) > 0
    _, compiled = tree_and_lut(3)
    assert (mask == segment_rgb(compiled.table, photo)).all()
    assert Image.open(tmp_path / "overlay.png").size == (512, 512)


def test_no_champion_exits_1(data_dir, tmp_path, capsys):
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "black.png")
    code, _, err = run(["segment", str(tmp_path / "black.png"), "-o", str(tmp_path / "mask.png")], capsys)
    assert code == 1 and "no champion has been promoted yet" in err


def test_a_gcs_deployment_without_a_bucket_exits_1_naming_the_setting(monkeypatch, capsys):
    monkeypatch.setenv("SKINSEG_DEPLOYMENT", "gcs")
    monkeypatch.setenv("SKINSEG_GCS_BUCKET", "")
    code, _, err = run(["predict"], capsys, stdin="74,85,123\n", monkeypatch=monkeypatch)
    assert code == 1 and "SKINSEG_GCS_BUCKET is not set" in err
