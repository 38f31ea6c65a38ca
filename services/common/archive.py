"""The archive of accepted events (MongoDB `events`, #26): what `dealerwatch events export`,
`policy diff --archive` and the rules service's dry-run reload read back as the backtest's input.
notify writes it (notify/archive.py) from its own queue on the events exchange; this module is
the document's shape and the reading of it, for any service."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import OperationFailure

from .durations import DAY
from .events import Event
from .mongo import Database, timeline_id

COLLECTION = "events"
RETENTION_INDEX = "retention"


def document(event: Event) -> dict[str, Any]:
    """The event as integrators posted it (its JSON), with what the archive is read by."""
    return {
        "_id": timeline_id(event.dealer_id, event.event_id),  # an event id is unique per dealer
        "dealer_id": event.dealer_id,
        "occurred_at": event.occurred_at,
        "event": event.model_dump(mode="json", exclude_none=True),
    }


async def ensure_indexes(db: Database, days: int) -> None:
    """By dealer and time, by time, and the retention (a TTL index on occurred_at): a changed
    DEALERWATCH_ARCHIVE_DAYS replaces the retention index."""
    events = db[COLLECTION]
    await events.create_index([("dealer_id", ASCENDING), ("occurred_at", ASCENDING)])
    seconds = int(days * DAY)
    existing = (await events.index_information()).get(RETENTION_INDEX)
    if existing is not None and existing.get("expireAfterSeconds") != seconds:
        await events.drop_index(RETENTION_INDEX)
    try:
        await events.create_index([("occurred_at", ASCENDING)], name=RETENTION_INDEX, expireAfterSeconds=seconds)
    except OperationFailure:  # another notify made it with its own setting just now: theirs stands
        pass


async def read(
    db: Database, since: dt.datetime | None = None, until: dt.datetime | None = None, dealer: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """The archived events (as posted) with since <= occurred_at < until, in time order."""
    query: dict[str, Any] = {}
    if dealer is not None:
        query["dealer_id"] = dealer
    span = {key: value for key, value in (("$gte", since), ("$lt", until)) if value is not None}
    if span:
        query["occurred_at"] = span
    cursor = db[COLLECTION].find(query, {"event": 1, "_id": 0}).sort([("occurred_at", ASCENDING), ("_id", ASCENDING)])
    async for found in cursor.batch_size(5000):
        yield found["event"]
