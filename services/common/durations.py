"""Durations in policy and routes files: `90s`, `15m`, `12h`, `7d`."""

from __future__ import annotations

import re

DURATION = r"^\d+(\.\d+)?(d|h|m|s)$"
DAY = 86400.0  # seconds

_UNITS = {"d": DAY, "h": 3600.0, "m": 60.0, "s": 1.0}


def seconds(duration: str) -> float:
    if not re.match(DURATION, duration):
        raise ValueError(f"{duration!r} is not a duration like 90s, 15m, 12h or 7d")
    return float(duration[:-1]) * _UNITS[duration[-1]]
