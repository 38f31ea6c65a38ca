"""When a visit plan counts as carried out: one definition for the rules (the missed-plan alert)
and for notify (the dealer file's plan list and the visit-plan report).

A visit fulfils a plan if it names the plan's `plan_id`, or if it is of the plan's kind (and at
the plan's outlet when the plan names one) and occurred in the plan's window: from the start of
`planned_for` minus EARLY_DAYS to the end of `planned_for` plus LATE_DAYS, in the policy's time
zone. A plan is missed once that window has passed without a fulfilling visit.
Times are POSIX seconds.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

EARLY_DAYS = 7
LATE_DAYS = 2

Status = Literal["planned", "done", "done-late", "missed", "cancelled"]
STATUSES: tuple[Status, ...] = ("planned", "done", "done-late", "missed", "cancelled")


def day_start(day: dt.date, zone: ZoneInfo) -> float:
    return dt.datetime.combine(day, dt.time(), zone).timestamp()


def window(planned_for: dt.date, zone: ZoneInfo) -> tuple[float, float]:
    """[start, end): the visits that fulfil the plan without naming it."""
    return (
        day_start(planned_for - dt.timedelta(days=EARLY_DAYS), zone),
        day_start(planned_for + dt.timedelta(days=LATE_DAYS + 1), zone),
    )


def fulfils(
    plan_id: str,
    kind: str,
    outlet_id: str | None,
    plan_window: tuple[float, float],
    visit_at: float,
    visit_kind: str,
    visit_outlet_id: str | None,
    visit_plan_id: str | None,
) -> bool:
    if visit_plan_id == plan_id:
        return True
    if visit_kind != kind or (outlet_id is not None and visit_outlet_id != outlet_id):
        return False
    return plan_window[0] <= visit_at < plan_window[1]


def status(planned_for: dt.date, fulfilled_at: float | None, cancelled_at: float | None, now: float, zone: ZoneInfo) -> Status:
    """A plan's status at `now`: done (by the end of planned_for), done late, cancelled, missed
    (its window has passed), or still planned."""
    if fulfilled_at is not None and fulfilled_at <= now:
        return "done" if fulfilled_at < day_start(planned_for + dt.timedelta(days=1), zone) else "done-late"
    if cancelled_at is not None and cancelled_at <= now:
        return "cancelled"
    return "missed" if now > window(planned_for, zone)[1] else "planned"
