"""How a batch's pixels differ from the training data: per-channel distance, skin share, new colours."""

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from skinseg_assets.pixels.rules import CHANNELS
from skinseg_assets.pixels.split import class_balance, colour_key

PSI_BINS = 16  # 16 bins of 16 intensity levels each
PSI_FLOOR = 1e-4  # stands in for an empty bin, so the logarithm stays finite
# A channel has drifted when its PSI passes the line AND the difference is unlikely to be chance
# (chi-square test of the same bins): a small batch's PSI is noisy. Of 200 samples of 100 rows
# of the training data itself, the PSI line alone warned for 54%, this for 1%.
SIGNIFICANCE = 0.0001


@dataclass(frozen=True)
class DriftReport:
    batch_rows: int
    reference_rows: int
    psi: dict[str, float]  # population stability index per channel
    ks: dict[str, float]  # Kolmogorov-Smirnov distance per channel
    batch_skin_share: float
    reference_skin_share: float
    # Share of the batch's rows whose colour no other batch of the training data had (train or
    # test side). Earlier releases stored a share against the train side only, as
    # unseen_colour_share: rows written since leave that column empty.
    new_colour_share: float

    # Chi-square test per channel: the chance of bins this different if batch and reference had
    # one distribution. Not stored in the table (as_row): it is the check's, with the threshold.
    p_values: dict[str, float]

    @property
    def max_psi(self) -> float:
        return max(self.psi.values()) if self.psi else 0.0

    @property
    def compared(self) -> bool:
        """Whether there was anything to compare (a batch and other batches' training data)."""
        return bool(self.psi)

    def drifted_channels(self, max_psi: float, significance: float = SIGNIFICANCE) -> list[str]:
        """The channels whose PSI passes `max_psi` with a difference significant at `significance`."""
        return [channel for channel, psi in self.psi.items() if psi > max_psi and self.p_values[channel] < significance]

    def as_row(self, batch: str) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "batch": batch,
                    "batch_rows": self.batch_rows,
                    "reference_rows": self.reference_rows,
                    # Always the same columns (NaN when there was nothing to compare): one table holds all batches.
                    **{f"psi_{channel}": self.psi.get(channel, np.nan) for channel in CHANNELS},
                    **{f"ks_{channel}": self.ks.get(channel, np.nan) for channel in CHANNELS},
                    "batch_skin_share": self.batch_skin_share,
                    "reference_skin_share": self.reference_skin_share,
                    "new_colour_share": self.new_colour_share,
                }
            ]
        )


def _levels(values: pd.Series) -> np.ndarray:
    return np.bincount(values.to_numpy(dtype=np.int64), minlength=256)[:256].astype(float)


def psi_bins(level_counts: np.ndarray) -> np.ndarray:
    """Counts per level (256) summed into PSI_BINS equal-width bins: PSI and the chi-square test use these."""
    return level_counts.reshape(PSI_BINS, -1).sum(axis=1)


def population_stability_index(reference_counts: np.ndarray, batch_counts: np.ndarray) -> float:
    """PSI over equal-width bins: sum((b - r) * ln(b / r)) of the bin shares. 0 = same shape."""
    reference, batch = psi_bins(reference_counts), psi_bins(batch_counts)
    reference = np.maximum(reference / reference.sum(), PSI_FLOOR)
    batch = np.maximum(batch / batch.sum(), PSI_FLOOR)
    return float(np.sum((batch - reference) * np.log(batch / reference)))


def chi_square_p_value(reference_counts: np.ndarray, batch_counts: np.ndarray) -> float:
    """p-value of Pearson's chi-square test that the two samples share one distribution over the PSI bins."""
    from scipy.special import chdtrc  # the chi-square survival function (scipy comes with scikit-learn)

    table = np.vstack([psi_bins(reference_counts), psi_bins(batch_counts)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0  # every pixel of both in one bin: nothing differs
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return float(chdtrc(table.shape[1] - 1, statistic))


def kolmogorov_smirnov(reference_counts: np.ndarray, batch_counts: np.ndarray) -> float:
    """Largest gap between the two cumulative distributions over the 256 levels."""
    return float(np.max(np.abs(np.cumsum(reference_counts) / reference_counts.sum() - np.cumsum(batch_counts) / batch_counts.sum())))


def other_batches(pixels: pd.DataFrame, batch: str) -> pd.DataFrame:
    """The rows of `pixels` from batches other than `batch` (all rows of a frame without batches)."""
    return pixels[pixels["batch"] != batch] if "batch" in pixels else pixels


def drift_report(batch: pd.DataFrame, reference: pd.DataFrame, reference_test_side: pd.DataFrame) -> DriftReport:
    """Compare a batch's validated pixels with the reference (the training data without the batch).

    New colours are those in neither the reference nor `reference_test_side` (the test pixels
    without the batch). Against the training data alone, a batch repeating known data would show
    every test-side colour (a fifth of them) as new.
    """
    known = np.union1d(colour_key(reference), colour_key(reference_test_side))
    new_colour_share = float((~np.isin(colour_key(batch), known)).mean()) if len(batch) else np.nan
    if batch.empty or reference.empty:
        return DriftReport(
            batch_rows=len(batch),
            reference_rows=len(reference),
            psi={},
            ks={},
            # NaN, not 0: a share of no rows is unknown.
            batch_skin_share=class_balance(batch) if len(batch) else np.nan,
            reference_skin_share=class_balance(reference) if len(reference) else np.nan,
            new_colour_share=new_colour_share,
            p_values={},
        )
    psi, ks, p_values = {}, {}, {}
    for channel in CHANNELS:
        reference_counts, batch_counts = _levels(reference[channel]), _levels(batch[channel])
        psi[channel] = population_stability_index(reference_counts, batch_counts)
        ks[channel] = kolmogorov_smirnov(reference_counts, batch_counts)
        p_values[channel] = chi_square_p_value(reference_counts, batch_counts)
    return DriftReport(
        batch_rows=len(batch),
        reference_rows=len(reference),
        psi=psi,
        ks=ks,
        batch_skin_share=class_balance(batch),
        reference_skin_share=class_balance(reference),
        new_colour_share=new_colour_share,
        p_values=p_values,
    )


def drift_png(batch: pd.DataFrame, reference: pd.DataFrame, title: str) -> bytes:
    """Per-channel histograms of the batch over the reference's."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 2.6))
    axes = figure.subplots(1, 3, sharey=True)
    for ax, channel, colour in zip(axes, CHANNELS, ("tab:blue", "tab:green", "tab:red"), strict=True):
        for frame, style, label in ((reference, "grey", "training data"), (batch, colour, "batch")):
            if len(frame):
                ax.hist(frame[channel], bins=PSI_BINS, range=(0, 256), density=True, histtype="step", color=style, label=label)
        ax.set_title(channel)
    axes[0].legend(loc="upper left", fontsize="small")
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    return buffer.getvalue()
