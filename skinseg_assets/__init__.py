"""skinseg: skin segmentation as Dagster software-defined assets."""

from skinseg_assets.definitions import defs

__all__ = ["defs"]
