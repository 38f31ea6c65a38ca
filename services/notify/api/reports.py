"""The warnings report (预警处理情况), as JSON or CSV (the dealer records' reports:
services/notify/dealers/reports.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.common.timeutil import utcnow

from .. import warnings_report
from ..dealers.file import DealerFile
from ..store import AlertStore
from .tables import FORMAT, Format, csv_response, period, policy_zone, wants_csv


def router(dealer_file: DealerFile, store: AlertStore) -> APIRouter:
    api = APIRouter(tags=["reports"])

    @api.get("/v1/reports/warnings", response_model=None)
    async def warnings(
        request: Request,
        group_by: warnings_report.GroupBy = "region",
        since: dt.datetime | None = Query(None, description="Alerts first seen from (default: 30 days before until)."),
        until: dt.datetime | None = Query(None, description="Alerts first seen before (default: now)."),
        format: Format | None = FORMAT,
    ) -> dict[str, Any] | Response:
        """How the warning procedure goes (services/notify/warnings_report.py says each field):
        raised, acknowledged, resolved by the rules or a person, open, handling times
        (wall clock), recurrences within 30 days; `by_week` for the chart."""
        zone, timezone = await policy_zone(dealer_file.policy_view)
        since, until = period(since, until, zone)
        seen_in = {"first_seen_at": {"$gte": since, "$lt": until}}
        alerts = await store.select(seen_in, warnings_report.PROJECTION)
        following = {"first_seen_at": {"$gt": since, "$lte": until + warnings_report.RECURRENCE}}
        followers = await store.select(following, warnings_report.FOLLOWER_PROJECTION)
        rows, weeks = warnings_report.report(alerts, followers, group_by, zone, utcnow())
        if wants_csv(request, format):
            return csv_response(rows, ("group", *warnings_report.FIELDS), f"warnings-by-{group_by}")
        return {"group_by": group_by, "since": since, "until": until, "timezone": timezone, "items": rows, "by_week": weeks}

    return api
