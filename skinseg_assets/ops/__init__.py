"""Ops for operator actions that are not asset materializations (e.g. rolling back the champion)."""
