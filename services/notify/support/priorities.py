"""Support priorities (collection `support_priorities`): one document per dealer with what rules
last said is at stake there (`DealerStanding`: its gaps, its running support, the policy's
weights) and its open alerts (followed from the change log), and the score of both
(services/common/support.py). A ranking is one indexed read, whatever the number of dealers.

Two writers change a document, each its own fields with one atomic update (no write reads
first, so none can undo another's): the signal consumer the standing (any notify instance; an
older one than kept changes nothing), the change-log follower the open alerts (the lease holder;
one field per alert). The score is worked out from both where it is read.

A ranking is read from memory (`Ranking`): each notify instance keeps every dealer's sort key
(score, region, support running or not) and reads, before it answers, only the documents changed
since its last read (`changed_at`, indexed, with an overlap for writes in flight), then the rows
it shows by id. No server sorts 100,000 documents per request (the MongoDB-protocol server here
scans a collection for any sort it cannot walk an index for: 10 s at 100,000; bench/priorities.py).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from services.common import support
from services.common.alerts import DealerStanding
from services.common.batching import wait_at_most
from services.common.health import Health
from services.common.mongo import find_in

from ..alert import ACTIVE
from ..feed import ChangeFeed
from ..leader import Lease
from ..store import AlertStore

log = logging.getLogger("dealerwatch.notify")

CURSOR = "support-priorities"
IDLE_SECONDS = 10.0  # with nothing new: the log is read again after this (or when the feed sees more)
STANDBY_SECONDS = 2.0
MAX_LIMIT = 200
DEFAULT_WEIGHTS = support.Weights().model_dump()
OPENED = {"alert_id": 1, "dealer_id": 1, "rule_id": 1, "severity": 1, "subject": 1, "status": 1}
OVERLAP_SECONDS = 5.0  # documents changed this long before the newest one read are read again (writes in flight)


def scored(doc: dict[str, Any]) -> tuple[float, float, list[dict[str, Any]]]:
    """(score, the open alerts' weight, the open alerts by id) of a kept document."""
    weights = doc.get("weights") or DEFAULT_WEIGHTS
    opened = [alert for _, alert in sorted((doc.get("open") or {}).items())]
    severities = [alert["severity"] for alert in opened]
    score = support.score(doc.get("target_gap", 0.0), doc.get("baseline_gap", 0.0), severities, weights)
    return score, support.alert_weight(severities, weights), opened


class Priorities:
    def __init__(self, store: AlertStore):
        self.collection = store.db["support_priorities"]
        self._store = store  # the open alerts are read through it (only alert.py and store.py touch `alerts`)
        self._changes = store.changes
        self.ranking = Ranking(self.collection)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("changed_at", ASCENDING)])

    async def stand(self, standing: DealerStanding) -> None:
        """A dealer's standing, unless a newer one is kept (a redelivered older one changes nothing)."""
        running = standing.running.model_dump() if standing.running else None
        fields = {
            "dealer_name": standing.dealer_name,
            "region": standing.region,
            "target_gap": standing.target_gap,
            "baseline_gap": standing.baseline_gap,
            "running": running,
            "running_id": None if running is None else running["support_id"],
            "weights": standing.weights.model_dump(),
            "at": standing.at,
            "at_ts": standing.at.timestamp(),
            "policy_version": standing.policy_version,
            "changed_at": time.time(),
        }
        newer = {"_id": standing.dealer_id, "$or": [{"at_ts": {"$exists": False}}, {"at_ts": {"$lte": standing.at.timestamp()}}]}
        if (await self.collection.update_one(newer, {"$set": fields})).matched_count:
            return
        try:  # none kept yet
            await self.collection.insert_one({"_id": standing.dealer_id, "open": {}, **fields})
        except DuplicateKeyError:  # one is kept: a newer standing (nothing to do), or the follower's, made just now
            await self.collection.update_one(newer, {"$set": fields})

    async def alerts_changed(self, dealer_id: str, changed: list[dict[str, Any]]) -> None:
        """Alerts of one dealer changed (the latest snapshot of each): its open alerts follow, each
        a field of its own (`open.<alert_id>`: alert ids are hex), so no write needs to read first."""
        kept = {f"open.{a['alert_id']}": _opened(a) for a in changed if a.get("status") in ACTIVE}
        gone = {f"open.{a['alert_id']}": "" for a in changed if a.get("status") not in ACTIVE}
        update: dict[str, Any] = {"$set": {**kept, "changed_at": time.time()}}
        if gone:
            update["$unset"] = gone
        try:
            await self.collection.update_one({"_id": dealer_id}, update, upsert=True)
        except DuplicateKeyError:  # created by another writer at the same moment
            await self.collection.update_one({"_id": dealer_id}, update)

    async def _apply(self, alerts: list[dict[str, Any]]) -> None:
        """A batch of changes in order: the last snapshot of each alert, one write per dealer."""
        latest = {alert["alert_id"]: alert for alert in alerts}
        by_dealer: dict[str, list[dict[str, Any]]] = {}
        for alert in latest.values():
            by_dealer.setdefault(alert["dealer_id"], []).append(alert)
        for dealer_id, changed in by_dealer.items():
            await self.alerts_changed(dealer_id, changed)

    async def follow(self, feed: ChangeFeed, lease: Lease, ready: Callable[[], bool], health: Health) -> None:
        """The lease holder (the one that publishes the change log) follows it with a cursor of its
        own, reading the feed (from memory while it reaches back) when it has seen more, or every
        IDLE_SECONDS; the first time, it reads the alerts open now instead (the log keeps 30 days)."""
        cursor: int | None = None
        while True:
            try:
                if not ready() or not await lease.hold():
                    cursor = None
                    await asyncio.sleep(STANDBY_SECONDS)
                    continue
                if cursor is None:
                    if not await self._changes.has_cursor(CURSOR):
                        last = await self._changes.last()  # before: a change meanwhile is read from the log again
                        await self._apply(await self._store.select({"status": {"$in": list(ACTIVE)}}, OPENED))
                        await self._changes.advance(CURSOR, last)
                    cursor = await self._changes.cursor(CURSOR)
                arrived = feed.arrival()
                batch = await feed.after(cursor)
                await self._apply([entry["alert"] for entry in batch])
                health.ok("support priorities")
                if batch:
                    await self._changes.advance(CURSOR, batch[-1]["_id"])
                    cursor = batch[-1]["_id"]
                else:
                    await wait_at_most(arrived, IDLE_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                cursor = None
                health.failed("support priorities", exc)
                log.exception("following alert changes for the support priorities failed; retrying")
                await asyncio.sleep(1.0)

    async def rank(self, region: str | None, limit: int) -> dict[str, Any]:
        """The dealers without running support by score (ties by dealer id), and those with."""
        ranked_ids, running_ids = await self.ranking.top(region, limit)
        found = {doc["_id"]: doc async for doc in find_in(self.collection, "_id", ranked_ids + running_ids, {}, {})}
        return {
            "ranked": [_row(found[i]) for i in ranked_ids if i in found],
            "running": [_row(found[i]) for i in running_ids if i in found],
        }


class Ranking:
    """Every dealer's sort key in memory, kept current from the documents changed since the last read."""

    def __init__(self, collection: Any):
        self._collection = collection
        self._keys: dict[str, tuple[float, str | None, bool]] = {}  # dealer -> (score, region, support running)
        self._since: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:  # one read at a time
            where = {} if self._since is None else {"changed_at": {"$gt": self._since - OVERLAP_SECONDS}}
            newest = self._since or 0.0
            projection = {
                "target_gap": 1,
                "baseline_gap": 1,
                "open": 1,
                "weights": 1,
                "region": 1,
                "running_id": 1,
                "changed_at": 1,
            }
            async for doc in self._collection.find(where, projection):
                self._keys[doc["_id"]] = (scored(doc)[0], doc.get("region"), doc.get("running_id") is not None)
                newest = max(newest, doc.get("changed_at", 0.0))
            self._since = newest

    async def top(self, region: str | None, limit: int) -> tuple[list[str], list[str]]:
        await self.refresh()
        wanted = [(dealer, key) for dealer, key in self._keys.items() if region is None or key[1] == region]
        ranked = heapq.nsmallest(limit, ((-key[0], dealer) for dealer, key in wanted if not key[2]))
        running = sorted(dealer for dealer, key in wanted if key[2])[:MAX_LIMIT]
        return [dealer for _, dealer in ranked], running


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    score, weight, opened = scored(doc)
    return {
        "dealer_id": doc["_id"],
        "dealer_name": doc.get("dealer_name"),
        "region": doc.get("region"),
        "score": score,
        "target_gap": doc.get("target_gap", 0.0),
        "baseline_gap": doc.get("baseline_gap", 0.0),
        "alert_weight": weight,
        "open_alerts": opened,
        "running": doc.get("running"),
        "judged_at": doc.get("at"),
    }


def _opened(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "alert_id": alert["alert_id"],
        "rule_id": alert.get("rule_id"),
        "severity": alert.get("severity"),
        "subject": alert.get("subject"),
    }
