"""Wall-clock time as the services store it: aware datetimes in UTC (MongoDB keeps UTC)."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
