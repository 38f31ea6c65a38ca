"""Dealer state in MongoDB (collection `rules_dealers`): the only module of rules using motor.

Ids chosen by upstream systems (event, promotion ids) may contain `.` or `$`,
so they are stored as values in lists, never as document keys.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import asdict
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError

from services.common import mongo
from services.common.judgement_time import CLOCK, CLOCK_ID, DEALERS
from services.common.settings import Settings

from .keys import SourceKey
from .network import Outlet, VisitPlan
from .state import TEXT_CODES, DealerState, Episode, Hold, Promotion, Series

FORMAT = 5
POLICY = "rules_policy"
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # MongoDB's limit


def to_doc(state: DealerState) -> dict[str, Any]:
    return {
        "_id": state.dealer_id,
        "format": FORMAT,
        "first_seen": state.first_seen,
        "latest": state.latest,
        "series": [
            {"source": key, "times": s.times.tolist(), "values": _values_out(key, s.values)} for key, s in state.series.items()
        ],
        "last": [[key, at] for key, at in state.last.items()],
        "latest_values": [[key, [list(e) for e in entries]] for key, entries in state.latest_values.items()],
        "promotions": [{"id": key, **asdict(p), "spend_ids": p.spend_ids.tolist()} for key, p in state.promotions.items()],
        "seen": [state.seen_ids.tolist(), state.seen_times.tolist()],
        "episodes": [{"key": key, **asdict(e)} for key, e in state.episodes.items()],
        "region": [state.region, state.region_at],
        "events": state.events,
        "hold": None if state.hold is None else [state.hold.until, state.hold.source, state.hold.mark],
        "name": [state.name, state.name_at, state.registered],
        "outlets": [{"id": key, **asdict(o)} for key, o in (state.outlets or {}).items()],
        "plans": [{"id": key, **asdict(p)} for key, p in (state.plans or {}).items()],
        "visits": [list(v) for v in state.visits or ()],
    }


READABLE = (3, 4, 5)  # 3: before `events` and `hold`; 4: before the network (all default)


def from_doc(doc: dict[str, Any]) -> DealerState:
    if doc.get("format") not in READABLE:
        raise ValueError(f"dealer {doc.get('_id')!r} is stored in format {doc.get('format')!r}; this version reads {READABLE}")
    series = {
        sys.intern(item["source"]): Series(array("d", item["times"]), _values_in(item["source"], item["values"]))
        for item in doc.get("series", [])
    }
    return DealerState(
        dealer_id=doc["_id"],
        first_seen=doc.get("first_seen"),
        latest=doc.get("latest"),
        series=series,
        last={sys.intern(key): at for key, at in doc.get("last", [])},
        latest_values={
            sys.intern(key): [(at, value, sys.intern(period) if period else None) for at, value, period in entries]
            for key, entries in doc.get("latest_values", [])
        },
        promotions={p.pop("id"): Promotion(**{**p, "spend_ids": array("q", p["spend_ids"])}) for p in doc.get("promotions", [])},
        seen_ids=array("q", doc["seen"][0]),
        seen_times=array("d", doc["seen"][1]),
        episodes={e.pop("key"): Episode(**e) for e in doc.get("episodes", [])},
        region=doc.get("region", [None, None])[0],
        region_at=doc.get("region", [None, None])[1],
        events=doc.get("events", 0),
        hold=Hold(*doc["hold"]) if doc.get("hold") else None,
        saved_latest=doc.get("latest"),
        name=doc.get("name", [None, None, False])[0],
        name_at=doc.get("name", [None, None, False])[1],
        registered=doc.get("name", [None, None, False])[2],
        outlets={o.pop("id"): Outlet(**o) for o in doc["outlets"]} if doc.get("outlets") else None,
        plans={p.pop("id"): VisitPlan(**p) for p in doc["plans"]} if doc.get("plans") else None,
        visits=[(at, sys.intern(kind), outlet, plan) for at, kind, outlet, plan in doc["visits"]] if doc.get("visits") else None,
    )


def _values_out(key: str, values: array[float]) -> list[Any]:
    # text values (outlet ids) are stored as text: codes are only valid inside one process
    return [TEXT_CODES.text(v) for v in values] if _is_text(key) else values.tolist()


def _values_in(key: str, values: list[Any]) -> array[float]:
    return array("d", [TEXT_CODES.code(v) for v in values] if _is_text(key) else values)


def _is_text(key: str) -> bool:
    return SourceKey.parse(key).text


def encode(state: DealerState) -> RawBSONDocument:
    """The dealer's document as BSON, or ValueError saying why it cannot be stored. Encoded
    here, before anything is published, so one dealer that cannot be stored is found alone."""
    try:
        raw = bson.encode(to_doc(state))
    except Exception as exc:
        raise ValueError(f"its state cannot be stored: {type(exc).__name__}: {exc}") from exc
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"its state is {len(raw):,} bytes, over MongoDB's {MAX_DOCUMENT_BYTES:,}")
    return RawBSONDocument(raw)


def stored_policy(settings: Settings) -> dict[str, Any] | None:
    """The last good policy ({text, version}), read once at a start whose policy file is invalid
    (before the event loop runs, hence the synchronous client)."""
    import pymongo

    client: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(settings.mongo_url.get_secret_value(), serverSelectionTimeoutMS=mongo.SERVER_SELECTION_MS) as client:
        return client[settings.mongo_db][POLICY].find_one({"_id": "last-good"})


class StateStore:
    def __init__(self, settings: Settings):
        self._client, db = mongo.database(settings)
        self._collection = db[DEALERS]
        self._clock = db[CLOCK]
        self._policy = db[POLICY]

    async def ping(self) -> bool:
        return await mongo.ping(self._client)

    async def load_all(self) -> dict[str, DealerState]:
        states = {}
        async for doc in self._collection.find({}):
            state = from_doc(doc)
            states[state.dealer_id] = state
        return states

    async def load(self, dealer_id: str) -> DealerState | None:
        doc = await self._collection.find_one({"_id": dealer_id})
        return None if doc is None else from_doc(doc)

    async def save(self, docs: list[RawBSONDocument], clock: dict[str, Any]) -> dict[str, str]:
        """Write dealer documents (made by `encode`) and the clock document; returns the dealers
        the database refused, with its reason (the others are written). Raises when the database
        is not reachable (nothing can be said about what was written: the caller retries)."""
        refused = {}
        if docs:
            try:
                await self._collection.bulk_write(
                    [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs], ordered=False
                )
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if not errors:
                    raise
                refused = {docs[e["index"]]["_id"]: f"the database refused its state: {e.get('errmsg')}" for e in errors}
        await self._clock.replace_one({"_id": CLOCK_ID}, {"_id": CLOCK_ID, **clock}, upsert=True)
        return refused

    async def load_clock(self) -> dict[str, Any] | None:
        return await self._clock.find_one({"_id": CLOCK_ID})

    async def save_policy(self, text: str, version: str) -> None:
        """The policy running now: what a start with an invalid file runs instead."""
        await self._policy.replace_one({"_id": "last-good"}, {"_id": "last-good", "text": text, "version": version}, upsert=True)

    def close(self) -> None:
        self._client.close()
