"""skinseg: skin segmentation as Dagster software-defined assets.

`skinseg_assets.defs` is the Definitions object. It is built on first access, so that importing
the plain pixel functions (`skinseg_assets.pixels`) from a notebook or a script does not load
Dagster and every integration with it.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

    defs: dg.Definitions

__all__ = ["defs"]


def __getattr__(name: str):
    if name == "defs":
        from skinseg_assets.definitions import defs

        return defs
    raise AttributeError(f"module 'skinseg_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    # Dagster's code-location loader finds `defs` by listing the module's attributes.
    return sorted({*globals(), "defs"})
