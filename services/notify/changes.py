"""The change log of alerts (collection `alert_changes`): what the live stream and the `alerts`
exchange are made of.

Every change of an alert (opened, updated, acknowledged, resolved) gets the next
number of a counter and is kept with a snapshot of the alert. A reader resumes
after the last number it saw, so a dashboard that reconnects, or a notify that
restarts, misses nothing. Numbers are taken before the change is written, so with
several notify instances a later number can be written first: readers hand out
only contiguous numbers, and skip a gap only once it is `GAP_SECONDS` old (a
number taken by an instance that died before writing).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from services.common.durations import DAY
from services.common.mongo import Database
from services.common.timeutil import utcnow

GAP_SECONDS = 2.0
WATCH_AWAIT_MS = 10_000
KEPT_DAYS = 30  # a dashboard or the exchange publisher can resume within this (MongoDB expires older ones)


class ChangeLog:
    def __init__(self, db: Database):
        self._changes = db["alert_changes"]
        self._counters = db["counters"]

    async def ensure_indexes(self) -> None:
        await self._changes.create_index([("alert_id", ASCENDING)])
        await self._changes.create_index([("at", ASCENDING)], expireAfterSeconds=int(KEPT_DAYS * DAY))
        # the counter exists before anyone increments it (an upserting find_one_and_update
        # returns nothing on the MongoDB-compatible test server)
        await self._counters.update_one({"_id": "alert_changes"}, {"$setOnInsert": {"seq": 0}}, upsert=True)

    async def record(self, change: str, alert: dict[str, Any]) -> int:
        counter = await self._counters.find_one_and_update(
            {"_id": "alert_changes"}, {"$inc": {"seq": 1}}, return_document=ReturnDocument.AFTER
        )
        seq: int = counter["seq"]
        await self._changes.insert_one(
            {"_id": seq, "change": change, "alert_id": alert["alert_id"], "at": utcnow(), "alert": alert}
        )
        return seq

    async def record_many(self, entries: list[tuple[str, dict[str, Any]]]) -> None:
        """record() for a batch: one counter update and one insert for all of it, in order."""
        if not entries:
            return
        counter = await self._counters.find_one_and_update(
            {"_id": "alert_changes"}, {"$inc": {"seq": len(entries)}}, return_document=ReturnDocument.AFTER
        )
        first, now = counter["seq"] - len(entries) + 1, utcnow()
        await self._changes.insert_many(
            [
                {"_id": first + n, "change": change, "alert_id": alert["alert_id"], "at": now, "alert": alert}
                for n, (change, alert) in enumerate(entries)
            ]
        )

    async def after(self, seq: int, limit: int = 500) -> list[dict[str, Any]]:
        """Changes numbered above `seq`, in order, stopping at a gap that is still young."""
        docs = await self._changes.find({"_id": {"$gt": seq}}).sort("_id", ASCENDING).limit(limit).to_list(None)
        ready, expected = [], seq + 1
        for doc in docs:
            if doc["_id"] != expected and utcnow() - doc["at"] < dt.timedelta(seconds=GAP_SECONDS):
                break  # an earlier number may still be written by another instance
            ready.append(doc)
            expected = doc["_id"] + 1
        return ready

    def watch_inserts(self) -> Any:
        """A change stream of new entries (only their numbers); an idle stream asks the server
        for more every WATCH_AWAIT_MS."""
        return self._changes.watch(
            [{"$match": {"operationType": "insert"}}, {"$project": {"documentKey": 1}}], max_await_time_ms=WATCH_AWAIT_MS
        )

    async def last(self) -> int:
        counter = await self._counters.find_one({"_id": "alert_changes"})
        return counter["seq"] if counter else 0

    async def cursor(self, name: str) -> int:
        doc = await self._counters.find_one({"_id": f"cursor:{name}"})
        return doc["seq"] if doc else 0

    async def has_cursor(self, name: str) -> bool:
        """Whether a reader of this name has started (its cursor may still be 0)."""
        return await self._counters.find_one({"_id": f"cursor:{name}"}) is not None

    async def advance(self, name: str, seq: int) -> None:
        await self._counters.update_one({"_id": f"cursor:{name}"}, {"$max": {"seq": seq}}, upsert=True)
