"""The dealer records' reports, each as JSON (and CSV where it is a table): the visit-plan
report (拜访计划执行情况), promotion owners held to account (促销问责), dealer feedback."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from services.common.events import EARLIEST, LATEST
from services.common.timeutil import utcnow

from ..api.tables import FORMAT, MAX_DAYS, Format, csv_response, period, policy_zone, wants_csv
from . import feedback as feedback_report
from . import promotions_report
from .evaluations import Evaluations
from .file import DealerFile
from .network import Network


def router(
    dealer_file: DealerFile, network: Network, feedback: feedback_report.FeedbackRecords, evaluations: Evaluations
) -> APIRouter:
    api = APIRouter(tags=["reports"])

    @api.get("/v1/reports/visit-plans")
    async def visit_plans(
        group_by: Literal["visitor", "region", "dealer"] = "visitor",
        since: dt.date | None = Query(None, description="First planned day counted (default: 30 days ago)."),
        until: dt.date | None = Query(None, description="Last planned day counted (default: today)."),
    ) -> dict[str, Any]:
        """Plans for the days from `since` to `until`, by visitor, region or dealer: planned, done
        (on time), done late, missed, cancelled, still pending, and the on-time rate (done on time
        / plans due and not cancelled), in the policy's time zone."""
        policy, error = await dealer_file.policy_view()
        if policy is None:
            raise HTTPException(503, f"plan days follow the rules' policy: {error}", headers={"Retry-After": "5"})
        zone = ZoneInfo(policy.timezone)
        today = utcnow().astimezone(zone).date()
        until = until or today
        since = since or max(until - dt.timedelta(days=30), EARLIEST.date())
        for name, day in (("since", since), ("until", until)):
            if not EARLIEST.date() <= day < LATEST.date():
                raise HTTPException(422, f"{name} must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
        if since > until:
            raise HTTPException(422, "since must not be after until")
        if (until - since).days > MAX_DAYS:
            raise HTTPException(422, f"a report covers at most {MAX_DAYS} days")
        rows = await network.report(group_by, since, until, zone, utcnow())
        return {"group_by": group_by, "since": since, "until": until, "timezone": policy.timezone, "items": rows}

    @api.get("/v1/reports/promotions", response_model=None)
    async def promotions(
        request: Request,
        group_by: promotions_report.GroupBy = "owner",
        since: dt.date | None = Query(None, description="First ends_on counted (default: 90 days before until)."),
        until: dt.date | None = Query(None, description="Last ends_on counted (default: today)."),
        format: Format | None = FORMAT,
    ) -> dict[str, Any] | Response:
        """Promotions that ended in the period, by owner or region (dealers/promotions_report.py):
        budget, spend, net effect, ratio, and how many were ineffective, below expectation, over
        budget or spent without approval; each group lists its promotions with their evaluation."""
        zone, timezone = await policy_zone(dealer_file.policy_view)
        until = until or utcnow().astimezone(zone).date()
        since = since or until - dt.timedelta(days=90)
        if since > until:
            raise HTTPException(422, "since must not be after until")
        if (until - since).days > MAX_DAYS:
            raise HTTPException(422, f"a report covers at most {MAX_DAYS} days")
        found = await evaluations.ended_between(since.isoformat(), until.isoformat())
        regions = await network.regions(sorted({e["dealer_id"] for e in found})) if group_by == "region" else {}
        rows = promotions_report.report(found, group_by, regions)
        if wants_csv(request, format):
            return csv_response(rows, ("group", *promotions_report.FIELDS), f"promotions-by-{group_by}")
        return {"group_by": group_by, "since": since, "until": until, "timezone": timezone, "items": rows}

    @api.get("/v1/reports/feedback", response_model=None)
    async def feedback_counts(
        request: Request,
        group_by: feedback_report.GroupBy = "region",
        since: dt.datetime | None = Query(None, description="Feedback received from (default: 30 days before until)."),
        until: dt.datetime | None = Query(None, description="Feedback received before (default: now)."),
        format: Format | None = FORMAT,
    ) -> dict[str, Any] | Response:
        """Dealer feedback received in the period, by region (the dealer's), channel or topic:
        received, answered, open (and the longest wait), days to an answer (p50, p90)."""
        zone, timezone = await policy_zone(dealer_file.policy_view)
        since, until = period(since, until, zone)
        found = await feedback.received_between(since, until, utcnow())
        regions = await network.regions(sorted({i["dealer_id"] for i in found})) if group_by == "region" else {}
        rows = feedback_report.report(found, group_by, regions)
        if wants_csv(request, format):
            return csv_response(rows, ("group", *feedback_report.FIELDS), f"feedback-by-{group_by}")
        return {"group_by": group_by, "since": since, "until": until, "timezone": timezone, "items": rows}

    return api
