"""Percentiles as the reports state them: nearest rank (the smallest value with at least p of the
values at or below it; p50 of 1, 2, 3, 4 is 2), None without values."""

from __future__ import annotations

import math


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]
