"""A dealer's weekly net sales beside its trailing baseline and its target: the series the
board draws, so that a sales drop is seen, not read.

Weeks start on Monday in the policy's time zone. The baseline of a week is the average of the
weeks before it that the policy's `dealer_file.baseline` spans (8 in the default policy), over
the weeks since the dealer's first sale. The target of a week is the monthly `sales_target` spread evenly over
the month's days, summed over the week's days.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from services.common.dealer_file import MAX_BASELINE_WEEKS, SHOWN_WEEKS

# how long a dealer's sales are kept: the chart's longest view, the longest baseline a policy may
# name and the week in progress
KEPT_WEEKS = SHOWN_WEEKS + MAX_BASELINE_WEEKS + 1


def week_start(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    day = moment.astimezone(zone).date()
    return day - dt.timedelta(days=day.weekday())


def weekly_series(
    sales: list[tuple[dt.datetime, float]],
    targets: dict[str, float],
    until: dt.datetime,
    weeks: int,
    zone: ZoneInfo,
    baseline_weeks: int,
) -> list[dict[str, Any]]:
    """sales: (time, net amount); targets: month "YYYY-MM" -> sales target."""
    last = week_start(until, zone)
    first_shown = last - dt.timedelta(weeks=weeks - 1)
    totals: dict[dt.date, float] = {}
    for at, amount in sales:
        start = week_start(at, zone)
        totals[start] = totals.get(start, 0.0) + amount
    first_sale = min(totals) if totals else None
    series = []
    for n in range(weeks):
        start = first_shown + dt.timedelta(weeks=n)
        before = [start - dt.timedelta(weeks=k) for k in range(1, baseline_weeks + 1)]
        known = [totals.get(w, 0.0) for w in before if first_sale is not None and w >= first_sale]
        series.append(
            {
                "week_start": start.isoformat(),
                "net_sales": round(totals.get(start, 0.0), 2),
                "baseline": round(sum(known) / len(known), 2) if known else None,
                "target": _week_target(start, targets),
            }
        )
    return series


def _week_target(start: dt.date, targets: dict[str, float]) -> float | None:
    total, any_target = 0.0, False
    for offset in range(7):
        day = start + dt.timedelta(days=offset)
        monthly = targets.get(f"{day.year:04d}-{day.month:02d}")
        if monthly is not None:
            any_target = True
            total += monthly / calendar.monthrange(day.year, day.month)[1]
    return round(total, 2) if any_target else None
