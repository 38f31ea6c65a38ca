"""Dealers: those with open alerts, one dealer's file, its weekly sales, its promotion evaluations."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query

from services.common.alerts import SEVERITY_RANK
from services.common.dealer_file import SHOWN_WEEKS, PolicyView
from services.common.timeutil import utcnow

from .. import alert as alerts
from ..store import AlertStore
from .evaluations import Evaluations
from .feedback import FeedbackRecords
from .file import DealerFile, dealers_with_open_alerts
from .network import MAX_PAGE, PAGE, Network, Page

PROMOTION_EVENTS = ["promotion.planned", "promotion.approved", "promotion.spend", "promotion.ended"]


def zone_of(policy: PolicyView | None) -> ZoneInfo:
    """The running policy's time zone (plan days are local days); UTC while rules never answered."""
    return ZoneInfo(policy.timezone if policy is not None else "UTC")


async def _paged(reading: Awaitable[Page]) -> Page:
    try:
        return await reading
    except ValueError as exc:  # a malformed cursor
        raise HTTPException(400, str(exc)) from None


def router(
    store: AlertStore,
    dealer_file: DealerFile,
    evaluations: Evaluations,
    network: Network,
    feedback: FeedbackRecords,
    support: Callable[[str], Awaitable[dict[str, Any]]],
) -> APIRouter:
    api = APIRouter(tags=["dealers"])

    @api.get("/v1/dealers")
    async def dealers(sort: Literal["severity", "age"] = "severity") -> dict[str, Any]:
        """Dealers with open (or acknowledged) alerts: most severe first, or longest open first."""
        rows = await dealers_with_open_alerts(store)
        if sort == "severity":
            rows.sort(key=lambda r: (-SEVERITY_RANK[r["highest_severity"]], r["oldest_open_since"]))
        else:
            rows.sort(key=lambda r: r["oldest_open_since"])
        return {"items": rows}

    @api.get("/v1/dealers/{dealer_id}")
    async def dealer(dealer_id: str) -> dict[str, Any]:
        """The dealer's file: master data, outlets, visit plans with their status, measures the rules
        keep, open and past alerts, promotions with plan, approval, spend, expected and actual
        effect, and the visits timeline."""
        # both ask rules (at most 3 s each, the policy kept for a minute): at once, not one after the other
        asked = await asyncio.gather(dealer_file.rules_view(dealer_id), dealer_file.policy_view())
        (rules_view, rules_error), (policy, _) = asked
        master = await network.master(dealer_id)
        outlets = await network.outlets(dealer_id, utcnow())
        plans = await network.plans(dealer_id, zone_of(policy), utcnow())
        outlets_page, plans_page = outlets, plans
        open_alerts, _ = await store.page({"dealer_id": dealer_id, **alerts.active()}, 100, None)
        past_alerts, _ = await store.page({"dealer_id": dealer_id, "status": "resolved"}, 100, None)
        evaluated = {e["promotion_id"]: e for e in await evaluations.of_dealer(dealer_id)}
        visits = await dealer_file.timeline(dealer_id, ["visit"])
        said = await feedback.of_dealer(dealer_id, utcnow())
        promotion_events = await dealer_file.timeline(dealer_id, PROMOTION_EVENTS)
        known = (rules_view, open_alerts, past_alerts, visits, promotion_events, master, outlets.total, plans.total, said)
        if not any(known):
            raise HTTPException(404, f"nothing is known of dealer {dealer_id!r}")
        promotions: dict[str, dict[str, Any]] = {}
        for event in reversed(promotion_events):
            promotions.setdefault(event["promotion_id"], {"promotion_id": event["promotion_id"], "events": []})["events"].append(
                event
            )
        for kept in (rules_view or {}).get("promotions", []):
            promotions.setdefault(kept["promotion_id"], {"promotion_id": kept["promotion_id"], "events": []}).update(kept)
        for promotion_id, promotion in promotions.items():
            promotion["evaluation"] = evaluated.get(promotion_id)
        return {
            "dealer_id": dealer_id,
            "master": master,
            # the first page of each (GET .../outlets and .../visit-plans with `cursor` for the rest)
            "outlets": outlets_page.items,
            "outlets_total": outlets_page.total,
            "outlets_next": outlets_page.next,
            "visit_plans": plans_page.items,
            "visit_plans_total": plans_page.total,
            "visit_plans_next": plans_page.next,
            "measures": (rules_view or {}).get("measures"),
            "measures_at": (rules_view or {}).get("at"),
            "measures_error": rules_error,
            "open_alerts": open_alerts,
            "past_alerts": past_alerts,
            "promotions": list(promotions.values()),
            "visits": visits,
            "feedback": said,  # open first (longest waiting first), then answered (newest first)
            # each incentive program's running period and past results, as rules keeps them (#24)
            "incentives": (rules_view or {}).get("incentives", []),
            "support": await support(dealer_id),  # running now, and past support with its evaluation
        }

    @api.get("/v1/dealers/{dealer_id}/weekly-sales")
    async def weekly_sales(
        dealer_id: str,
        weeks: int = Query(12, ge=1, le=SHOWN_WEEKS),
        until: dt.datetime | None = Query(None, description="The last week shown is the one holding this time; default now."),
    ) -> dict[str, Any]:
        """Net sales per week (Monday first, in the policy's time zone) with the trailing baseline
        the policy names and the pro-rated monthly target: what the board's chart draws."""
        if until is not None and until.tzinfo is None:
            raise HTTPException(422, "until needs a time zone offset, e.g. 2026-01-01T00:00:00Z")
        policy, error = await dealer_file.policy_view()
        if policy is None:
            raise HTTPException(503, f"the chart follows the rules' policy: {error}", headers={"Retry-After": "5"})
        series = await dealer_file.weekly_sales(dealer_id, weeks, until or utcnow(), policy)
        return {"dealer_id": dealer_id, "timezone": policy.timezone, **policy.dealer_file.model_dump(), "weeks": series}

    @api.get("/v1/dealers/{dealer_id}/outlets")
    async def outlets(
        dealer_id: str,
        cursor: str | None = Query(None, description="`next` of the previous page."),
        limit: int = Query(PAGE, ge=1, le=MAX_PAGE),
    ) -> dict[str, Any]:
        """The dealer's outlets by id, a page at a time."""
        page = await _paged(network.outlets(dealer_id, utcnow(), cursor, limit))
        return {"items": page.items, "total": page.total, "next": page.next}

    @api.get("/v1/dealers/{dealer_id}/visit-plans")
    async def visit_plans(
        dealer_id: str,
        cursor: str | None = Query(None, description="`next` of the previous page."),
        limit: int = Query(PAGE, ge=1, le=MAX_PAGE),
    ) -> dict[str, Any]:
        """The dealer's visit plans with their status, the latest planned_for first, a page at a time."""
        policy, _ = await dealer_file.policy_view()
        page = await _paged(network.plans(dealer_id, zone_of(policy), utcnow(), cursor, limit))
        return {"items": page.items, "total": page.total, "next": page.next}

    @api.get("/v1/dealers/{dealer_id}/outlets/{outlet_id}")
    async def outlet(dealer_id: str, outlet_id: str) -> dict[str, Any]:
        """One outlet's file: its master data and status, last sale and net sales of 30 days, its
        recent sales, the visits and visit plans at it, and its alerts."""
        found = await network.outlet(dealer_id, outlet_id, utcnow())
        if found is None:
            raise HTTPException(404, f"dealer {dealer_id!r} has no registered outlet {outlet_id!r}")
        policy, _ = await dealer_file.policy_view()
        now = utcnow()
        visits = [v for v in await dealer_file.timeline(dealer_id, ["visit"], limit=1000) if v.get("outlet_id") == outlet_id]
        alerts_, _ = await store.page({"dealer_id": dealer_id, "subject": outlet_id}, 100, None)
        plans = await network.plans(dealer_id, zone_of(policy), now, outlet_id=outlet_id)
        return {
            "dealer_id": dealer_id,
            "dealer": await network.master(dealer_id),
            "outlet": found,
            "sales": await network.outlet_sales(dealer_id, outlet_id),
            "visits": visits[:100],
            "visit_plans": plans.items,
            "alerts": alerts_,
        }

    @api.get("/v1/promotion-evaluations")
    async def promotion_evaluations(dealer_id: str) -> dict[str, Any]:
        """Every ended promotion of a dealer with its effectiveness evaluation (P, S, X, ratio, verdict)."""
        return {"items": await evaluations.of_dealer(dealer_id)}

    return api
