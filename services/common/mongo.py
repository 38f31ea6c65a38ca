"""MongoDB client creation and health, shared by the services' stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection, AsyncIOMotorDatabase
from pymongo.errors import BulkWriteError

from .settings import Settings

Client = AsyncIOMotorClient[dict[str, Any]]
Database = AsyncIOMotorDatabase[dict[str, Any]]
Collection = AsyncIOMotorCollection[dict[str, Any]]

# an unreachable database fails a call after this long (the default is 30 s): loops retry, and
# readiness says so sooner
SERVER_SELECTION_MS = 5000


def database(settings: Settings) -> tuple[Client, Database]:
    """Every write waits for the journal (j: true): a message is acked after the write that
    covers it, and without the journal a server killed a moment later loses acknowledged writes
    (measured with the local server: 640 of 2,000 lost on SIGKILL; none with the journal).
    On a replica set, writes also wait for a majority of members (`DEALERWATCH_MONGO_WRITE_CONCERN`,
    default "majority"): a write only the old primary had is rolled back when another is elected."""
    concern = settings.mongo_write_concern
    client: Client = AsyncIOMotorClient(
        settings.mongo_url.get_secret_value(),
        tz_aware=True,
        journal=True,
        w=int(concern) if concern.isdigit() else concern,
        serverSelectionTimeoutMS=SERVER_SELECTION_MS,
    )
    return client, client[settings.mongo_db]


async def ping(client: Client) -> bool:
    try:
        await client.admin.command("ping")
        return True
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False


IN_CHUNK = 50  # ids per `$in`: the local server's cost grows with the square of the list (1,000 ids: 2.3 s; in 50s: 0.25 s)


async def find_in(
    collection: Any, field: str, values: list[Any], query: dict[str, Any], projection: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """The documents whose `field` is one of `values` (and that match `query`), read in chunks."""
    for start in range(0, len(values), IN_CHUNK):
        async for doc in collection.find({**query, field: {"$in": values[start : start + IN_CHUNK]}}, projection):
            yield doc


async def insert_new(collection: Collection, docs: list[dict[str, Any]]) -> dict[int, str]:
    """Insert the documents in one unordered write; {index: reason} of those the database cannot
    take (one already stored, from a message delivered again, is fine)."""
    refused, encoded, positions = {}, [], []
    for index, doc in enumerate(docs):
        try:
            encoded.append(RawBSONDocument(bson.encode(doc)))
            positions.append(index)
        except Exception as exc:  # noqa: BLE001 - e.g. an integer beyond 64 bits
            refused[index] = f"{type(exc).__name__}: {exc}"
    if not encoded:
        return refused
    try:
        await collection.insert_many(encoded, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if not errors:
            raise
        for error in errors:
            if error.get("code") != 11000:  # not a duplicate: this document is refused
                refused[positions[error["index"]]] = str(error.get("errmsg"))
    return refused


def timeline_id(dealer_id: str, event_id: str) -> str:
    """The _id of an event's document (dealer file, archive): an event id is unique per dealer."""
    return f"{dealer_id}\x1f{event_id}"  # ids hold no control characters (the contract)
