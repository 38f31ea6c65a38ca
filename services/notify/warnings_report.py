"""The warnings report (#23): how the warning procedure goes, by region, rule, assignee, cause or
severity. One row per group of the alerts first seen in the period:

- raised, acknowledged (at least once), resolved by the rules or by a person, open now (and the
  oldest open one's age);
- handling times from when notify stored the alert (`created_at`) to its acknowledgement and to
  its resolution (`resolution_stored_at`): wall-clock times only, so that a backfill's old event
  times never distort them. Percentiles are nearest-rank over the alerts that have the step
  (p50 of 1, 2, 3, 4 minutes is 2), None when none has;
- recurred_30d: resolved alerts followed by a new alert of the same rule, dealer and subject
  first seen within 30 days of the resolution.

`by_week` counts raised and resolved per week (weeks start on Monday in the policy's time zone,
by `first_seen_at`) and group, for the chart.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Literal
from zoneinfo import ZoneInfo

from services.common.percentiles import percentile

from .alert import ACTIVE, RULES

GroupBy = Literal["region", "rule", "assignee", "cause", "severity"]
GROUPINGS: tuple[GroupBy, ...] = ("region", "rule", "assignee", "cause", "severity")
RECURRENCE = dt.timedelta(days=30)
FIELDS = (  # of a row, after its "group" (None: alerts without one, e.g. unassigned)
    "raised",
    "acknowledged",
    "resolved_by_rules",
    "resolved_by_person",
    "open",
    "oldest_open_hours",
    "ack_p50_minutes",
    "ack_p90_minutes",
    "resolve_p50_hours",
    "resolve_p90_hours",
    "recurred_30d",
)
# what the report reads of an alert
PROJECTION = {
    name: 1
    for name in (
        "rule_id",
        "dealer_id",
        "subject",
        "severity",
        "labels",
        "assignee",
        "status",
        "resolved_by",
        "resolved_cause",
        "resolved_at",
        "created_at",
        "acknowledged_at",
        "resolution_stored_at",
        "first_seen_at",
    )
}
FOLLOWER_PROJECTION = {"rule_id": 1, "dealer_id": 1, "subject": 1, "first_seen_at": 1}


def group_of(alert: dict[str, Any], group_by: GroupBy) -> str | None:
    if group_by == "region":
        value = (alert.get("labels") or {}).get("region")
    elif group_by == "rule":
        value = alert["rule_id"]
    elif group_by == "cause":
        value = alert.get("resolved_cause") if alert["status"] == "resolved" and alert.get("resolved_by") != RULES else None
    else:
        value = alert.get(group_by)
    return None if value is None else str(value)


def _key(alert: dict[str, Any]) -> tuple[str, str, str | None]:
    return alert["rule_id"], alert["dealer_id"], alert.get("subject")


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def recurred(alerts: list[dict[str, Any]], followers: Iterable[dict[str, Any]]) -> set[int]:
    """Positions of the resolved alerts followed by an alert of the same rule, dealer and subject
    first seen after the resolution and at most 30 days after it."""
    seen: dict[tuple[str, str, str | None], list[dt.datetime]] = defaultdict(list)
    for follower in followers:
        seen[_key(follower)].append(_utc(follower["first_seen_at"]))
    found = set()
    for index, alert in enumerate(alerts):
        resolved_at = alert.get("resolved_at")
        if alert["status"] != "resolved" or resolved_at is None:
            continue
        end = _utc(resolved_at)
        if any(end < later <= end + RECURRENCE for later in seen.get(_key(alert), ())):
            found.add(index)
    return found


def _hours(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 3600, 3)


def _minutes(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 60, 3)


def report(
    alerts: list[dict[str, Any]],
    followers: Iterable[dict[str, Any]],
    group_by: GroupBy,
    zone: ZoneInfo,
    now: dt.datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows, by_week) of the alerts first seen in the period; followers: the alerts first seen
    from the period's start to 30 days after its end (for recurrences)."""
    recurring = recurred(alerts, followers)
    groups: dict[str | None, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for index, alert in enumerate(alerts):
        groups[group_of(alert, group_by)].append((index, alert))
    rows = [_row(group_by, name, members, recurring, now) for name, members in groups.items()]
    rows.sort(key=lambda row: (-row["raised"], row["group"] is None, row["group"] or ""))
    return rows, _weeks(alerts, group_by, zone)


def _row(
    group_by: GroupBy, name: str | None, members: list[tuple[int, dict[str, Any]]], recurring: set[int], now: dt.datetime
) -> dict[str, Any]:
    acks = [_minutes(_utc(a["acknowledged_at"]) - _utc(a["created_at"])) for _, a in members if a.get("acknowledged_at")]
    resolves = [
        _hours(_utc(a["resolution_stored_at"]) - _utc(a["created_at"]))
        for _, a in members
        if a["status"] == "resolved" and a.get("resolution_stored_at")
    ]
    still_open = [a for _, a in members if a["status"] in ACTIVE]
    resolved = [a for _, a in members if a["status"] == "resolved"]
    return {
        "group": name,
        "raised": len(members),
        "acknowledged": len(acks),
        "resolved_by_rules": sum(1 for a in resolved if a.get("resolved_by") == RULES),
        "resolved_by_person": sum(1 for a in resolved if a.get("resolved_by") != RULES),
        "open": len(still_open),
        "oldest_open_hours": max((_hours(now - _utc(a["created_at"])) for a in still_open), default=None),
        "ack_p50_minutes": percentile(acks, 0.5),
        "ack_p90_minutes": percentile(acks, 0.9),
        "resolve_p50_hours": percentile(resolves, 0.5),
        "resolve_p90_hours": percentile(resolves, 0.9),
        "recurred_30d": sum(1 for index, _ in members if index in recurring),
    }


def _weeks(alerts: list[dict[str, Any]], group_by: GroupBy, zone: ZoneInfo) -> list[dict[str, Any]]:
    counts: dict[tuple[dt.date, str | None], list[int]] = defaultdict(lambda: [0, 0])
    for alert in alerts:
        day = _utc(alert["first_seen_at"]).astimezone(zone).date()
        week = day - dt.timedelta(days=day.weekday())
        entry = counts[(week, group_of(alert, group_by))]
        entry[0] += 1
        entry[1] += alert["status"] == "resolved"
    return [
        {"week": week.isoformat(), "group": name, "raised": raised, "resolved": resolved}
        for (week, name), (raised, resolved) in sorted(counts.items(), key=lambda item: (item[0][0], item[0][1] or ""))
    ]
