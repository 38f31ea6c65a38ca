"""How far back an event can still be counted: written by rules, read by ingest, which refuses
at the door (422) what rules could no longer count, instead of accepting it and dropping it.

Rules keeps each dealer's judgement time (`latest`, POSIX seconds; it never goes back) in its
dealer documents and the policy's lateness in one clock document; an event more than the
lateness older than its dealer's judgement time is refused.
"""

from __future__ import annotations

from typing import Any

from .mongo import find_in

DEALERS = "rules_dealers"
CLOCK = "rules_clock"
CLOCK_ID = "clock"


async def earliest_countable(db: Any, dealer_ids: list[str]) -> tuple[float | None, dict[str, float]]:
    """(the policy's lateness, dealer -> the earliest event time rules can still count for it),
    for the dealers rules knows; (None, {}) before rules has stored anything."""
    clock = await db[CLOCK].find_one({"_id": CLOCK_ID}, {"lateness": 1})
    if clock is None:
        return None, {}
    lateness = clock["lateness"]
    found = find_in(db[DEALERS], "_id", dealer_ids, {"latest": {"$ne": None}}, {"latest": 1})
    return lateness, {doc["_id"]: doc["latest"] - lateness async for doc in found}
