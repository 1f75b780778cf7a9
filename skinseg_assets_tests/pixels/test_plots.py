"""The quality figures are real PNG images."""

import io

import numpy as np
import pytest
from matplotlib import image as mpimg
from PIL import Image

from skinseg_assets.pixels.metrics import ClassifierMetrics
from skinseg_assets.pixels.plots import confusion_matrix_png, roc_curve_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def classifier_metrics(matrix: list[list[int]], fpr: list[float], tpr: list[float], auc: float) -> ClassifierMetrics:
    (tn, fp), (fn, tp) = matrix
    total = tn + fp + fn + tp
    return ClassifierMetrics(
        accuracy=(tn + tp) / total if total else 0.0,
        precision=0.5,
        recall=0.5,
        f1=0.5,
        roc_auc=auc,
        true_negatives=tn,
        false_positives=fp,
        false_negatives=fn,
        true_positives=tp,
        test_rows=total,
        predict_seconds=0.01,
        roc_false_positive_rate=np.array(fpr),
        roc_true_positive_rate=np.array(tpr),
    )


CASES = {
    "typical": classifier_metrics([[38_000, 120], [95, 9_800]], [0.0, 0.003, 0.2, 1.0], [0.0, 0.99, 1.0, 1.0], 0.9987),
    "all-zero": classifier_metrics([[0, 0], [0, 0]], [0.0, 1.0], [0.0, 1.0], 0.5),
    "millions": classifier_metrics([[1_234_567, 0], [0, 7_654_321]], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], 1.0),
}


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every pixel: fails on a truncated or corrupt stream
    return image


FIGURES = {"confusion_matrix": confusion_matrix_png, "roc_curve": roc_curve_png}


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], bytes]:
    """Every figure for every case, drawn once: (figure name, case name) -> PNG bytes."""
    return {(figure, case): draw(CASES[case]) for figure, draw in FIGURES.items() for case in CASES}


@pytest.mark.parametrize("figure", FIGURES)
@pytest.mark.parametrize("case", CASES)
def test_each_figure_is_a_valid_png(rendered, figure, case):
    png = rendered[figure, case]

    assert png.startswith(PNG_SIGNATURE)
    image = decoded(png)
    assert image.format == "PNG"
    width, height = image.size
    # 3.6 x 3.2 inches at 80 dpi, give or take what the tight bounding box trims or adds.
    assert 150 < width < 500 and 150 < height < 500

    pixels = mpimg.imread(io.BytesIO(png), format="png")
    assert pixels.shape[:2] == (height, width)
    assert pixels.shape[2] in (3, 4)
    assert pixels[..., :3].std() > 0, "the image is not blank"


def test_different_numbers_draw_different_pictures(rendered):
    for figure in FIGURES:
        assert rendered[figure, "typical"] != rendered[figure, "millions"]
    assert rendered["confusion_matrix", "typical"] != rendered["roc_curve", "typical"]


def test_each_count_is_written_in_a_colour_readable_on_its_cell(monkeypatch):
    """Cells are shaded by log count, so a mid-sized count (9,800 of 38,000) is a dark cell: white text."""
    from matplotlib.axes import Axes

    written = {}
    original = Axes.text

    def recording_text(self, x, y, text, **kwargs):
        written[text] = kwargs.get("color")
        return original(self, x, y, text, **kwargs)

    monkeypatch.setattr(Axes, "text", recording_text)
    confusion_matrix_png(CASES["typical"])
    assert written == {"38,000": "white", "9,800": "white", "120": "black", "95": "black"}
