"""The support endpoints: where to send support next (the ranking), and a dealer's support
(running now, and past ones with their evaluation). Support is sent by posting
`support.dispatched` to ingest (the board's form does, with an operator key)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Query

from .evaluations import SupportEvaluations
from .priorities import MAX_LIMIT, Priorities


def router(priorities: Priorities, evaluations: SupportEvaluations) -> APIRouter:
    api = APIRouter(tags=["support"])

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
