"""Promotion evaluations (collection `promotion_evaluations`): every ended promotion's
judgement, effective or not, kept for the dealer's file."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING

from services.common.alerts import PromotionEvaluation
from services.common.mongo import Database


class Evaluations:
    def __init__(self, db: Database):
        self._collection = db["promotion_evaluations"]

    async def keep(self, evaluation: PromotionEvaluation) -> None:
        document = evaluation.model_dump(mode="python")
        document["_id"] = f"{evaluation.dealer_id}\x1f{evaluation.promotion_id}"
        await self._collection.replace_one({"_id": document["_id"]}, document, upsert=True)

    async def ensure_indexes(self) -> None:
        await self._collection.create_index([("ends_on", ASCENDING)])

    async def ended_between(self, since: str, until: str) -> list[dict[str, Any]]:
        """The evaluations of promotions whose ends_on is from since to until (ISO dates)."""
        return await self._collection.find({"ends_on": {"$gte": since, "$lte": until}}, {"_id": 0}).to_list(None)

    async def of_dealer(self, dealer_id: str) -> list[dict[str, Any]]:
        return await self._collection.find({"dealer_id": dealer_id}, {"_id": 0}).sort("at", DESCENDING).to_list(None)
