"""Alerts in MongoDB (collection `alerts`): persistence only. What a document holds and how it
changes is alert.py's; this module writes and reads it.

One document per episode, `_id` = the episode's `alert_id` (a unique index by construction), so
redelivered signals and several notify instances can never create a second alert for one
episode; every update is conditional (alert.py), which makes applying one twice harmless. Each
write carries a mark for its change-log entry (changes.py), cleared once the entry is written:
if notify stops between the two, the lease holder writes the entry later (`log_unlogged`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common import mongo
from services.common.alerts import SEVERITY_RANK
from services.common.settings import Settings
from services.common.timeutil import utcnow

from . import alert as alerts
from .alert import STATUSES, AlertDocument
from .changes import ChangeLog

UNLOGGED_GRACE_SECONDS = 5.0


class AlertStore:
    def __init__(self, settings: Settings):
        self._client, self.db = mongo.database(settings)
        self.collection = self.db["alerts"]
        self.changes = ChangeLog(self.db)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("first_seen_at", DESCENDING), ("_id", DESCENDING)])
        await self.collection.create_index([("dealer_id", ASCENDING), ("first_seen_at", DESCENDING)])
        await self.collection.create_index([("status", ASCENDING), ("first_seen_at", DESCENDING)])
        # only alerts whose change is not logged yet (a moment, normally): the sweep reads few
        await self.collection.create_index(
            [("updated_at", ASCENDING)], name="unlogged", partialFilterExpression={"unlogged": {"$exists": True}}
        )
        await self.changes.ensure_indexes()

    async def ping(self) -> bool:
        return await mongo.ping(self._client)

    def close(self) -> None:
        self._client.close()

    # --- writing: every write is logged as a change of the alert ---

    async def insert(self, document: AlertDocument, change: str) -> bool:
        """Store a new alert unless one with its id exists; True if this call created it."""
        mark = _mark(change)
        try:
            result = await self.collection.update_one({"_id": document["_id"]}, alerts.inserted(document, mark), upsert=True)
        except DuplicateKeyError:
            return False  # another instance inserted it first
        if result.upserted_id is None:
            return False
        await self._log(change, {**document, "unlogged": mark}, mark)
        return True

    async def insert_many(self, documents: list[tuple[AlertDocument, str]]) -> set[str]:
        """insert() for a batch of (new alert, change) in four round trips whatever its size
        (write, counter, log, unmark): the ids of the alerts this call created."""
        if not documents:
            return set()
        marks = [_mark(change) for _, change in documents]
        requests = [
            UpdateOne({"_id": doc["_id"]}, alerts.inserted(doc, mark), upsert=True)
            for (doc, _), mark in zip(documents, marks, strict=True)
        ]
        try:
            upserted = set((await self.collection.bulk_write(requests, ordered=False)).upserted_ids or {})
        except BulkWriteError as exc:  # another instance inserted some first: those are not ours
            if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
                raise
            upserted = {item["index"] for item in exc.details.get("upserted", [])}
        created = [(documents[i][0], documents[i][1], marks[i]) for i in sorted(upserted)]
        if created:
            await self.changes.record_many(
                [(change, alerts.public_view({**doc, "unlogged": mark})) for doc, change, mark in created]
            )
            await self.collection.bulk_write(
                [UpdateOne({"_id": doc["_id"], "unlogged.token": mark["token"]}, alerts.UNMARKED) for doc, _, mark in created],
                ordered=False,
            )
        return {doc["_id"] for doc, _, _ in created}

    async def change(
        self,
        alert_id: str,
        condition: dict[str, Any],
        update: dict[str, Any],
        change: str,
        projection: dict[str, int] | None = None,
    ) -> dict[str, Any] | None:
        """Apply an update (alert.py) if the alert meets its condition; the alert after it, or None."""
        mark = _mark(change)
        update = alerts.marked(update, mark, utcnow())
        changed = await self.collection.find_one_and_update(
            {"_id": alert_id, **condition}, update, projection=projection, return_document=ReturnDocument.AFTER
        )
        if changed is not None:
            await self._log(change, changed, mark)
        return changed

    async def claim(self, alert_id: str, condition: dict[str, Any], update: dict[str, Any]) -> bool:
        """An update (alert.py) that is no change anyone watches: a recurrence's successor named once."""
        result = await self.collection.update_one({"_id": alert_id, **condition}, update)
        return bool(result.modified_count)

    async def _log(self, change: str, alert: dict[str, Any], mark: dict[str, str]) -> None:
        """The change log entry of a write that carried `mark`; then the mark goes. A crash in
        between leaves the mark, and `log_unlogged` writes the entry later: no change is lost."""
        await self.changes.record(change, alerts.public_view(alert))
        await self.collection.update_one({"_id": alert["alert_id"], "unlogged.token": mark["token"]}, alerts.UNMARKED)

    async def log_unlogged(self) -> int:
        """Change log entries for writes whose writer stopped before logging them."""
        cutoff = utcnow() - dt.timedelta(seconds=UNLOGGED_GRACE_SECONDS)
        stale = await self.collection.find({"unlogged": {"$exists": True}, "updated_at": {"$lt": cutoff}}).to_list(100)
        for alert in stale:
            await self._log(alert["unlogged"]["change"], alert, alert["unlogged"])
        return len(stale)

    # --- reading ---

    async def get(self, alert_id: str, projection: dict[str, int] | None = None) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": alert_id}, alerts.PUBLIC_PROJECTION if projection is None else projection)

    async def ids(self, query: dict[str, Any]) -> list[str]:
        return [doc["_id"] async for doc in self.collection.find(query, {"_id": 1})]

    async def select(self, query: dict[str, Any], projection: dict[str, int]) -> list[dict[str, Any]]:
        """The alerts matching a query, as much of each as a report reads."""
        return [doc async for doc in self.collection.find(query, projection)]

    async def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [row async for row in self.collection.aggregate(pipeline)]

    async def counts(self, query: dict[str, Any]) -> dict[str, Any]:
        by_severity = {name: 0 for name in SEVERITY_RANK}
        by_status = {name: 0 for name in STATUSES}
        pipeline = [{"$match": query}, {"$group": {"_id": {"severity": "$severity", "status": "$status"}, "n": {"$sum": 1}}}]
        for row in await self.aggregate(pipeline):
            by_severity[row["_id"]["severity"]] += row["n"]
            by_status[row["_id"]["status"]] += row["n"]
        return {"total": sum(by_status.values()), "by_severity": by_severity, "by_status": by_status}

    async def page(self, query: dict[str, Any], limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first (by first_seen_at, then alert_id); keyset pagination."""
        query = dict(query)
        if cursor:
            at, alert_id = decode_cursor(cursor)
            query["$or"] = [{"first_seen_at": {"$lt": at}}, {"first_seen_at": at, "_id": {"$lt": alert_id}}]
        projection = {k: v for k, v in alerts.PUBLIC_PROJECTION.items() if k != "_id"}
        docs = await (
            self.collection.find(query, projection)
            .sort([("first_seen_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit + 1)
            .to_list(None)
        )
        next_cursor = encode_cursor(docs[limit - 1]) if len(docs) > limit else None
        return [alerts.public_view(doc) for doc in docs[:limit]], next_cursor


def encode_cursor(doc: dict[str, Any]) -> str:
    raw = json.dumps([doc["first_seen_at"].isoformat(), doc["_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_CURSOR = 1024  # characters: a time and an alert id, base64-encoded


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """The position a `next_cursor` names; ValueError for anything else (nested too deeply too)."""
    if len(cursor) > MAX_CURSOR:
        raise ValueError("invalid cursor: longer than any this API gives")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, alert_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(at, str) or not isinstance(alert_id, str):
            raise TypeError("not a position")
        moment = dt.datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        return moment, alert_id
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValueError("invalid cursor: pass the next_cursor of a page as it was given") from exc


def _mark(change: str) -> dict[str, str]:
    return {"change": change, "token": uuid.uuid4().hex}
