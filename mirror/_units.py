"""Sizes for people: what the CLI, the index's page for people and reports print."""

from __future__ import annotations


def human_size(nbytes: int) -> str:
    """``1.7 MB``: decimal units, as download tools show them."""
    value = float(nbytes)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
