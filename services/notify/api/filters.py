"""The alert filters shared by the list, the counts and the live stream."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Query

from services.common.alerts import Severity

from ..alert import STATUSES
from ..matchers import Matchers

UNASSIGNED = "none"


@dataclass(frozen=True)
class AlertFilter:
    dealer_id: str | None = None
    rule_id: str | None = None
    severity: str | None = None
    region: str | None = None
    statuses: tuple[str, ...] = ()
    since: dt.datetime | None = None
    assignee: str | None = None  # UNASSIGNED: alerts nobody is assigned to

    @property
    def matchers(self) -> Matchers:
        assignee = None if self.assignee == UNASSIGNED else self.assignee
        return Matchers.of(
            {
                "dealer_id": self.dealer_id,
                "rule_id": self.rule_id,
                "severity": self.severity,
                "region": self.region,
                "assignee": assignee,
            }
        )

    def query(self) -> dict[str, Any]:
        """As a MongoDB query on the alerts collection."""
        query: dict[str, Any] = self.matchers.query()
        if self.assignee == UNASSIGNED:
            query["assignee"] = None  # (also alerts stored before assignees existed)
        if self.statuses:
            query["status"] = {"$in": list(self.statuses)}
        if self.since is not None:
            query["first_seen_at"] = {"$gte": self.since}
        return query

    def matches(self, alert: dict[str, Any]) -> bool:
        """The same test on an alert document (the live stream)."""
        return (
            self.matchers.matches(alert)
            and (self.assignee != UNASSIGNED or alert.get("assignee") is None)
            and (not self.statuses or alert.get("status") in self.statuses)
            and (self.since is None or alert["first_seen_at"] >= self.since)
        )


def alert_filter(
    dealer_id: str | None = None,
    rule_id: str | None = None,
    severity: Severity | None = None,
    region: str | None = Query(None, description="The alert's `region` label."),
    status: str | None = Query(None, description=f"{', '.join(STATUSES)}; several comma-separated."),
    since: dt.datetime | None = Query(None, description="Only alerts first seen at or after this time (RFC 3339)."),
    assignee: str | None = Query(None, max_length=128, description=f"Who investigates; `{UNASSIGNED}`: nobody."),
) -> AlertFilter:
    """FastAPI dependency: the filters from the query string, checked."""
    statuses = tuple(s.strip() for s in status.split(",") if s.strip()) if status else ()
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise HTTPException(422, f"unknown status {', '.join(unknown)}: use {', '.join(STATUSES)}")
    if since is not None and since.tzinfo is None:
        raise HTTPException(422, "since needs a time zone offset, e.g. 2026-01-01T00:00:00Z")
    return AlertFilter(dealer_id, rule_id, severity, region, statuses, since, assignee)
