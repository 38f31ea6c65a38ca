"""The support endpoints: where to send support next (the ranking), and a dealer's support
(running now, and past ones with their evaluation). Support is sent by posting
`support.dispatched` to ingest (the board's form does, with an operator key)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from services.common.events import SupportDispatched
from services.common.settings import Settings
from services.common.timeutil import utcnow

from .evaluations import SupportEvaluations
from .priorities import MAX_LIMIT, Priorities


class SendSupport(BaseModel):
    """support.dispatched without its envelope: notify adds the event id (from the support id: a
    retry is the same event), the time (now) and the type."""

    model_config = ConfigDict(extra="forbid")
    dealer_id: str
    support_id: str
    kind: str
    starts_on: dt.date
    ends_on: dt.date
    cost: str | float
    dealer_share: str | float
    owner: str
    reason: str | None = None


def router(priorities: Priorities, evaluations: SupportEvaluations, settings: Settings, http: httpx.AsyncClient) -> APIRouter:
    api = APIRouter(tags=["support"])

    @api.post("/v1/support", status_code=202)
    async def send(body: SendSupport) -> JSONResponse:
        """Send support (the board's form, an operator key): posted to ingest as `support.dispatched`,
        validated and published there like any integrator's event; ingest's refusal is answered as is."""
        event = {"event_id": f"support:{body.support_id}", "type": "support.dispatched", "occurred_at": utcnow().isoformat()}
        event.update(body.model_dump(mode="json", exclude_none=True))
        try:
            SupportDispatched.model_validate(event)  # the contract's own checks, before anything is sent
        except ValueError as exc:
            raise HTTPException(422, " ".join(str(exc).split())[:500]) from None
        keys = settings.ingest_keys
        headers = {"Authorization": f"Bearer {keys[0].get_secret_value()}"} if keys else {}
        try:
            answer = await http.post(f"{settings.ingest_url.rstrip('/')}/v1/events", json=[event], headers=headers, timeout=10)
        except httpx.HTTPError as exc:
            raise HTTPException(503, f"ingest is not reachable: {type(exc).__name__}", headers={"Retry-After": "5"}) from None
        body_of = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
        return JSONResponse(body_of, status_code=answer.status_code)

    @api.get("/v1/support/evaluations")
    async def recent(limit: int = Query(50, ge=1, le=MAX_LIMIT)) -> dict[str, Any]:
        """The supports ended last, newest first, each with its evaluation and the alerts it resolved."""
        return {"items": await evaluations.recent(None, limit)}

    @api.get("/v1/support/priorities")
    async def ranking(
        region: str | None = Query(None, max_length=64, description="Only the dealers of this region."),
        limit: int = Query(20, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        """The dealers without support running now, by score (ties by dealer id): score =
        (target_gap + baseline_gap) x (1 + the severity weights of its open alerts), the gaps and
        weights as the policy's `support:` section says, each with the open alerts behind it and
        its last support's evaluation; and, apart, the dealers with support running (days left)."""
        found = await priorities.rank(region, limit)
        rows = found["ranked"] + found["running"]
        latest = await evaluations.latest([row["dealer_id"] for row in rows])
        for row in rows:
            row["last_support"] = latest.get(row["dealer_id"])
        return {"region": region, **found}

    of_dealer = dealer_support(priorities, evaluations)

    @api.get("/v1/dealers/{dealer_id}/support")
    async def support(dealer_id: str) -> dict[str, Any]:
        """The dealer's support running now (as rules last judged it) and its past support, newest
        first, each with its evaluation and the alerts it resolved."""
        return {"dealer_id": dealer_id, **await of_dealer(dealer_id)}

    return api


def dealer_support(priorities: Priorities, evaluations: SupportEvaluations) -> Callable[[str], Awaitable[dict[str, Any]]]:
    """A dealer's support for its file: running now, and past support with its evaluation."""

    async def of_dealer(dealer_id: str) -> dict[str, Any]:
        doc = await priorities.collection.find_one({"_id": dealer_id}, {"running": 1})
        return {"running": (doc or {}).get("running"), "past": await evaluations.of_dealer(dealer_id)}

    return of_dealer
