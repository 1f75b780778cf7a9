"""Pixel logic as plain functions: reading, rules, split, model, metrics, plots.

Nothing here imports Dagster; the assets in `skinseg_assets.assets` wire these together, and a
notebook or a benchmark can call them directly.
"""
