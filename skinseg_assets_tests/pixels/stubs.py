"""Stand-ins shared by the pixel-logic tests."""

import numpy as np


class FixedProbability:
    """A fitted-looking classifier whose P(skin) is B / 100, with its classes in a chosen order."""

    def __init__(self, classes: list[bool]):
        self.classes_ = np.array(classes)

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        skin = matrix[:, 0] / 100
        columns = {True: skin, False: 1 - skin}
        return np.column_stack([columns[bool(label)] for label in self.classes_])
