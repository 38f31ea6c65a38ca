"""Reports: the visit-plan report (拜访计划执行情况)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query

from services.common.events import EARLIEST, LATEST
from services.common.timeutil import utcnow

from ..dealerfile import DealerFile
from ..network import Network

MAX_DAYS = 366


def router(dealer_file: DealerFile, network: Network) -> APIRouter:
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

    return api
