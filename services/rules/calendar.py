"""Calendar arithmetic in the policy's time zone (months, midnights, promotion days)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache


class Calendar:
    def __init__(self, timezone: str):
        self.zone = zoneinfo.ZoneInfo(timezone)
        self._last: tuple[float, dt.datetime] = (float("nan"), dt.datetime.min)
        self._day: tuple[float, float] = (float("inf"), float("-inf"))  # [start, next midnight) of the day asked last

    def local(self, t: float) -> dt.datetime:
        # one judgement asks for the same time five or six times (measures, midnight)
        last_t, last_local = self._last
        if t == last_t:
            return last_local
        local = dt.datetime.fromtimestamp(t, self.zone)
        self._last = (t, local)
        return local

    def month_key(self, t: float) -> str:
        local = self.local(t)
        return f"{local.year:04d}-{local.month:02d}"

    def month_bounds(self, t: float) -> tuple[float, float]:
        local = self.local(t)
        return _month_bounds(self.zone, local.year, local.month)

    def day_of_month(self, t: float) -> int:
        return self.local(t).day

    def next_midnight(self, t: float) -> float:
        start, end = self._day  # most questions in a row are about the same day (every dealer's)
        if start <= t < end:
            return end
        today = self.local(t).date()
        start, end = self.day_start(today), self.day_start(today + dt.timedelta(days=1))
        self._day = (start, end)
        return end

    def day_start(self, day: dt.date) -> float:
        return dt.datetime.combine(day, dt.time(), self.zone).timestamp()


@lru_cache(maxsize=256)
def _month_bounds(zone: zoneinfo.ZoneInfo, year: int, month: int) -> tuple[float, float]:
    start = dt.datetime(year, month, 1, tzinfo=zone)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return start.timestamp(), end.timestamp()
