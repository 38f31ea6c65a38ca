"""Support evaluations (collection `support_evaluations`): what each support did, kept for the
dealer's file and the ranking's "last support". To rules' evaluation (P, S, X, ratio) notify adds
the dealer's alerts open at the support's start and which of those were resolved by its end."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING

from services.common.alerts import SupportEvaluation
from services.common.mongo import Database, find_in


class SupportEvaluations:
    def __init__(self, db: Database):
        self._collection = db["support_evaluations"]
        self._alerts = db["alerts"]

    async def ensure_indexes(self) -> None:
        await self._collection.create_index([("dealer_id", ASCENDING), ("ended_at", DESCENDING)])
        await self._collection.create_index([("ended_at", DESCENDING)])

    async def keep(self, evaluation: SupportEvaluation) -> None:
        start, end = evaluation.started_at, evaluation.ended_at
        opened_before = {
            "dealer_id": evaluation.dealer_id,
            "opened_at": {"$lt": start},
            "$or": [{"resolved_at": None}, {"resolved_at": {"$gt": start}}],
        }
        found = await self._alerts.find(opened_before, {"rule_id": 1, "subject": 1, "severity": 1, "resolved_at": 1}).to_list(
            1000
        )
        open_at_start = [
            {"alert_id": a["_id"], "rule_id": a["rule_id"], "subject": a.get("subject"), "severity": a["severity"]}
            for a in sorted(found, key=lambda a: a["_id"])
        ]
        resolved = {a["_id"] for a in found if a.get("resolved_at") is not None and a["resolved_at"] <= end}
        document = evaluation.model_dump(mode="python")
        document.update(
            _id=f"{evaluation.dealer_id}\x1f{evaluation.support_id}",
            alerts_open_at_start=open_at_start,
            alerts_resolved_by_end=[a for a in open_at_start if a["alert_id"] in resolved],
        )
        await self._collection.replace_one({"_id": document["_id"]}, document, upsert=True)

    async def of_dealer(self, dealer_id: str, limit: int = 50) -> list[dict[str, Any]]:
        found = self._collection.find({"dealer_id": dealer_id}, {"_id": 0}).sort("ended_at", DESCENDING)
        return await found.limit(limit).to_list(None)

    async def recent(self, region_dealers: list[str] | None, limit: int) -> list[dict[str, Any]]:
        """The newest evaluations (of these dealers, if given)."""
        where = {} if region_dealers is None else {"dealer_id": {"$in": region_dealers}}
        return await self._collection.find(where, {"_id": 0}).sort("ended_at", DESCENDING).limit(limit).to_list(None)

    async def latest(self, dealer_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Each dealer's last evaluated support."""
        latest: dict[str, dict[str, Any]] = {}
        async for doc in find_in(self._collection, "dealer_id", dealer_ids, {}, {"_id": 0}):
            kept = latest.get(doc["dealer_id"])
            if kept is None or doc["ended_at"] > kept["ended_at"]:
                latest[doc["dealer_id"]] = doc
        return latest
