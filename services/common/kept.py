"""What ingest reads of the dealer documents rules stores: how many visit plans, outlets and
promotions each dealer keeps (`counts`, written with its state), and their ids (limits.py)."""

from __future__ import annotations

from typing import Any

from .judgement_time import DEALERS
from .mongo import find_in


async def kept(db: Any, dealer_ids: list[str]) -> dict[str, dict[str, int]]:
    """dealer -> how many plans, outlets and promotions rules keeps for it (its stored state)."""
    found = find_in(db[DEALERS], "_id", dealer_ids, {"counts": {"$exists": True}}, {"counts": 1})
    return {doc["_id"]: doc["counts"] async for doc in found}


async def kept_ids(db: Any, dealer_id: str, kind: str) -> set[str]:
    """The ids of the plans, outlets or promotions rules keeps for the dealer."""
    doc = await db[DEALERS].find_one({"_id": dealer_id}, {f"{kind}.id": 1})
    return {item["id"] for item in (doc or {}).get(kind, [])}
