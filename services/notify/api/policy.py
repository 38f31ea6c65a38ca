"""GET /v1/policy/live (a viewer key): the running policy as the rules service describes it
(rules, thresholds, summaries, version, reload history, the last change's diff), with how many
alerts each rule has open here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from ..alert import active
from ..dealers.file import DealerFile
from ..store import AlertStore


def router(store: AlertStore, dealer_file: DealerFile) -> APIRouter:
    api = APIRouter(tags=["policy"])

    @api.get("/v1/policy/live")
    async def live_policy() -> dict[str, Any]:
        answer, error = await dealer_file.ask_rules("/v1/policy/live", "the rules service has no policy view")
        if answer is None:
            raise HTTPException(503, error)
        pipeline = [{"$match": active()}, {"$group": {"_id": "$rule_id", "open": {"$sum": 1}}}]
        counts = {row["_id"]: row["open"] async for row in store.collection.aggregate(pipeline)}
        for rule in answer.get("rules", []):
            rule["open_alerts"] = counts.get(rule["rule_id"], 0)
        answer["open_alerts_of_removed_rules"] = sum(
            n for rule_id, n in counts.items() if rule_id not in {r["rule_id"] for r in answer.get("rules", [])}
        )
        return answer

    return api
