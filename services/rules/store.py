"""Dealer state in MongoDB (collection `rules_dealers`): the only module of rules using motor.

Ids chosen by upstream systems (event, promotion ids) may contain `.` or `$`,
so they are stored as values in lists, never as document keys.

Each dealer document carries its partition and the epoch of the owner that wrote it; a write
is refused when the stored epoch is newer (the partition moved on to another worker: see
partitions.py). Also here: the workers' heartbeats (`rules_workers`) and the partitions' epochs
(`rules_partitions`).
"""

from __future__ import annotations

import sys
import time
from array import array
from dataclasses import dataclass, fields
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError

from services.common import mongo
from services.common.judgement_time import CLOCK, CLOCK_ID, DEALERS
from services.common.partitions import partition_of
from services.common.settings import Settings

from .feedback import FeedbackItem
from .keys import SourceKey
from .network import Outlet, VisitPlan
from .state import DealerState, Episode, Hold, Promotion, Series, TextCodes
from .support import Support

FORMAT = 7
POLICY = "rules_policy"
WORKERS = "rules_workers"
PARTITIONS = "rules_partitions"
WORKER_TIMEOUT_SECONDS = 6.0  # a worker not seen for this long no longer counts for the share
DUPLICATE_KEY = 11000  # an upsert whose filter missed a newer document: the write is fenced off
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # MongoDB's limit


def to_doc(state: DealerState) -> dict[str, Any]:
    return {
        "_id": state.dealer_id,
        "format": FORMAT,
        "first_seen": state.first_seen,
        "latest": state.latest,
        "series": [
            {"source": key, "times": s.times.tolist(), "values": _values_out(key, s.values, state)}
            for key, s in state.series.items()
        ],
        "last": [[key, at] for key, at in state.last.items()],
        "latest_values": [[key, [list(e) for e in entries]] for key, entries in state.latest_values.items()],
        "promotions": [{"id": key, **_plain(p), "spend_ids": p.spend_ids.tolist()} for key, p in state.promotions.items()],
        "seen": [state.seen_ids.tolist(), state.seen_times.tolist()],
        "episodes": [{"key": key, **_plain(e)} for key, e in state.episodes.items()],
        "region": [state.region, state.region_at],
        "events": state.events,
        "hold": None if state.hold is None else [state.hold.until, state.hold.source, state.hold.mark],
        "name": [state.name, state.name_at, state.registered],
        "outlets": [{"id": key, **_plain(o)} for key, o in (state.outlets or {}).items()],
        "plans": [{"id": key, **_plain(p)} for key, p in (state.plans or {}).items()],
        "visits": [list(v) for v in state.visits or ()],
        "feedback": [{"id": key, **_plain(f)} for key, f in (state.feedback or {}).items()],
        "supports": [{"id": key, **_plain(f)} for key, f in (state.supports or {}).items()],
        "months": [[m, v] for m, v in (state.month_sales or {}).items()],
        "month_targets": [[m, at, v] for m, (at, v) in (state.month_targets or {}).items()],
        # what ingest reads to refuse at the door what the dealer could not keep (limits.py)
        "counts": {
            "plans": len(state.plans or ()),
            "outlets": len(state.outlets or ()),
            "promotions": len(state.promotions),
            "feedback": len(state.feedback or ()),
            "supports": len(state.supports or ()),
        },
    }


def _plain(item: Any) -> dict[str, Any]:
    """A state dataclass as a dict (dataclasses.asdict copies deeply: 15 µs a plan, 0.3 s for a
    dealer with 20,000 at every flush)."""
    return {name: getattr(item, name) for name in _FIELDS[type(item)]}


_FIELDS = {kind: tuple(f.name for f in fields(kind)) for kind in (Promotion, Episode, Outlet, VisitPlan, FeedbackItem, Support)}
READABLE = (3, 4, 5, 6, 7)  # 3: before `events` and `hold`; 4: before the network (all default); 5: before partitions;
# 6: before supports and incentives' months


def from_doc(doc: dict[str, Any]) -> DealerState:
    if doc.get("format") not in READABLE:
        raise ValueError(f"dealer {doc.get('_id')!r} is stored in format {doc.get('format')!r}; this version reads {READABLE}")
    codes = TextCodes()
    series = {
        sys.intern(item["source"]): Series(array("d", item["times"]), _values_in(item["source"], item["values"], codes))
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
        feedback={f.pop("id"): FeedbackItem(**f) for f in doc["feedback"]} if doc.get("feedback") else None,
        supports={f.pop("id"): Support(**f) for f in doc["supports"]} if doc.get("supports") else None,
        month_sales={sys.intern(m): v for m, v in doc["months"]} if doc.get("months") else None,
        month_targets={sys.intern(m): (at, v) for m, at, v in doc["month_targets"]} if doc.get("month_targets") else None,
        codes=codes if len(codes) else None,
    )


def _values_out(key: str, values: array[float], state: DealerState) -> list[Any]:
    # text values (outlet ids) are stored as text: codes are only valid inside the state
    if not _is_text(key):
        return values.tolist()
    codes = state.text_codes()
    return [codes.text(v) for v in values]


def _values_in(key: str, values: list[Any], codes: TextCodes) -> array[float]:
    return array("d", [codes.code(v) for v in values] if _is_text(key) else values)


def _is_text(key: str) -> bool:
    return SourceKey.parse(key).text


@dataclass(frozen=True)
class Encoded:
    """A dealer's document ready to be written, with what the write needs to know of it (reading
    them back from the raw BSON decodes the whole document: 15 s of 160 for a dealer of 20,000
    plans)."""

    dealer_id: str
    partition: int
    epoch: int
    document: RawBSONDocument


def encode(state: DealerState, partition: int = 0, epoch: int = 0) -> Encoded:
    """The dealer's document as BSON, or ValueError saying why it cannot be stored. Encoded
    here, before anything is published, so one dealer that cannot be stored is found alone."""
    try:
        raw = bson.encode({**to_doc(state), "partition": partition, "epoch": epoch})
    except Exception as exc:
        raise ValueError(f"its state cannot be stored: {type(exc).__name__}: {exc}") from exc
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"its state is {len(raw):,} bytes, over MongoDB's {MAX_DOCUMENT_BYTES:,}")
    return Encoded(state.dealer_id, partition, epoch, RawBSONDocument(raw))


def stored_policy(settings: Settings) -> dict[str, Any] | None:
    """The last good policy ({text, version}), read once at a start whose policy file is invalid
    (before the event loop runs, hence the synchronous client)."""
    import pymongo

    client: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(settings.mongo_url.get_secret_value(), serverSelectionTimeoutMS=mongo.SERVER_SELECTION_MS) as client:
        return client[settings.mongo_db][POLICY].find_one({"_id": "last-good"})


def _fenced(epoch: int) -> dict[str, Any]:
    """Matches a document written by this epoch or an older one. (Documents from before
    partitions get epoch 0 at the start, `assign_partitions`: an `$or` with `$exists` here made
    the local server scan the collection for every write, 6 s per 250 documents.)"""
    return {"epoch": {"$lte": epoch}}


class StateStore:
    def __init__(self, settings: Settings):
        self._client, db = mongo.database(settings)
        self._collection = db[DEALERS]
        self._clock = db[CLOCK]
        self._policy = db[POLICY]
        self._workers = db[WORKERS]
        self._partitions = db[PARTITIONS]
        self._count = settings.partitions
        self.db = db  # (the archive's reader and the reload history read their own collections)

    async def ping(self) -> bool:
        return await mongo.ping(self._client)

    async def load_all(self) -> dict[str, DealerState]:
        states = {}
        async for doc in self._collection.find({}):
            state = from_doc(doc)
            states[state.dealer_id] = state
        return states

    async def assign_partitions(self) -> int:
        """Give documents written before partitions (or under another partition count) their
        partition; returns how many changed. Idempotent; run at each start."""
        await self._collection.create_index([("partition", ASCENDING)])
        meta = await self._clock.find_one({"_id": "partitions"})
        query: dict[str, Any] = {} if meta is None or meta.get("count") != self._count else {"partition": {"$exists": False}}
        moves = [
            UpdateOne({"_id": doc["_id"]}, {"$set": {"partition": partition_of(doc["_id"], self._count)}})
            async for doc in self._collection.find(query, {"_id": 1})
        ]
        if moves:
            await self._collection.bulk_write(moves, ordered=False)
        await self._collection.update_many({"epoch": {"$exists": False}}, {"$set": {"epoch": 0}})
        await self._clock.replace_one({"_id": "partitions"}, {"_id": "partitions", "count": self._count}, upsert=True)
        return len(moves)

    async def load_partition(self, partition: int) -> dict[str, DealerState]:
        states = {}
        async for doc in self._collection.find({"partition": partition}):
            state = from_doc(doc)
            states[state.dealer_id] = state
        return states

    # --- ownership ---

    async def take_partition(self, partition: int, worker: str) -> int:
        """The partition's next epoch, now this worker's: writes of older epochs are refused."""
        doc = await self._partitions.find_one_and_update(
            {"_id": partition},
            {"$inc": {"epoch": 1}, "$set": {"owner": worker, "since": time.time()}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["epoch"])

    async def epochs(self, partitions: list[int]) -> dict[int, int]:
        return {doc["_id"]: doc["epoch"] async for doc in self._partitions.find({"_id": {"$in": partitions}})}

    async def heartbeat(self, worker: str, info: dict[str, Any]) -> int:
        """Say this worker is alive; returns how many workers are (this one included)."""
        now = time.time()
        await self._workers.replace_one({"_id": worker}, {"_id": worker, "seen": now, **info}, upsert=True)
        return int(await self._workers.count_documents({"seen": {"$gt": now - WORKER_TIMEOUT_SECONDS}}))

    async def leave(self, worker: str) -> None:
        await self._workers.delete_one({"_id": worker})

    async def load(self, dealer_id: str) -> DealerState | None:
        doc = await self._collection.find_one({"_id": dealer_id})
        return None if doc is None else from_doc(doc)

    async def save(
        self, docs: list[Encoded], clocks: dict[int, dict[str, Any]], lateness: float
    ) -> tuple[dict[str, str], set[int]]:
        """Write dealer documents (made by `encode`, with their partition and epoch) and each
        partition's clock ({epoch, at, history}); returns (the dealers the database refused,
        with its reason; the partitions whose writes were fenced off by a newer epoch). Raises
        when the database is not reachable (nothing can be said about what was written: the
        caller retries)."""
        refused, fenced = {}, set()
        if docs:
            try:
                await self._collection.bulk_write(
                    [ReplaceOne({"_id": doc.dealer_id, **_fenced(doc.epoch)}, doc.document, upsert=True) for doc in docs],
                    ordered=False,
                )
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if not errors:
                    raise
                for error in errors:
                    doc = docs[error["index"]]
                    if error.get("code") == DUPLICATE_KEY:
                        fenced.add(doc.partition)
                    else:
                        refused[doc.dealer_id] = f"the database refused its state: {error.get('errmsg')}"
        # the partitions' clocks and the lateness ingest reads (judgement_time.py): one round trip
        writes: list[Any] = [UpdateOne({"_id": CLOCK_ID}, {"$set": {"lateness": lateness}}, upsert=True)]
        numbers = list(clocks)
        writes += [
            ReplaceOne(
                {"_id": f"{CLOCK_ID}:p{n}", **_fenced(clocks[n]["epoch"])}, {"_id": f"{CLOCK_ID}:p{n}", **clocks[n]}, upsert=True
            )
            for n in numbers
        ]
        try:
            await self._clock.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or any(e.get("code") != DUPLICATE_KEY or e["index"] == 0 for e in errors):
                raise
            fenced |= {numbers[e["index"] - 1] for e in errors}
        return refused, fenced

    async def load_clock(self, partition: int) -> dict[str, Any] | None:
        """The partition's clock as its last owner saved it; before partitions, the one clock."""
        return await self._clock.find_one({"_id": f"{CLOCK_ID}:p{partition}"}) or await self._clock.find_one(
            {"_id": CLOCK_ID, "at": {"$exists": True}}
        )

    async def save_policy(self, text: str, version: str) -> None:
        """The policy running now: what a start with an invalid file runs instead."""
        await self._policy.replace_one({"_id": "last-good"}, {"_id": "last-good", "text": text, "version": version}, upsert=True)

    def close(self) -> None:
        self._client.close()
