"""Small PNG figures of a classifier's quality, for metadata and notebooks."""

import io

import numpy as np

from skinseg_assets.pixels.metrics import ClassifierMetrics


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()


def _new_figure(width: float, height: float):
    # The object-oriented API, not pyplot: no global state, no GUI backend, safe in threads.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def confusion_matrix_png(metrics: ClassifierMetrics) -> bytes:
    figure = _new_figure(3.6, 3.2)
    axes = figure.subplots()
    matrix = metrics.confusion_matrix()
    shade = np.log1p(matrix)  # log counts: the few errors still show against the many right calls
    axes.imshow(shade, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        # The text colour follows the cell's shade, so it stays readable on dark cells.
        colour = "white" if shade[row, column] > shade.max() / 2 else "black"
        axes.text(column, row, f"{count:,}", ha="center", va="center", color=colour)
    axes.set_xticks([0, 1], labels=["non-skin", "skin"])
    axes.set_yticks([0, 1], labels=["non-skin", "skin"])
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title("Confusion matrix (test pixels)")
    return _png(figure)


def roc_curve_png(metrics: ClassifierMetrics) -> bytes:
    figure = _new_figure(3.6, 3.2)
    axes = figure.subplots()
    axes.plot(metrics.roc_false_positive_rate, metrics.roc_true_positive_rate, label=f"AUC {metrics.roc_auc:.6f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("ROC curve (test pixels)")
    axes.legend(loc="lower right")
    return _png(figure)
