"""Support priorities (collection `support_priorities`): one document per dealer with what rules
last said is at stake there (`DealerStanding`: its gaps, its running support, the policy's
weights) and its open alerts (followed from the change log), and the score of both
(services/common/support.py). A ranking is one indexed read, whatever the number of dealers.

Two writers change a document: the signal consumer (standings, any notify instance) and the
change-log follower (open alerts, the lease holder). Each write is a read, the score recomputed,
and a replace conditional on the version read (`v`): a write that lost a race reads again.

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
from services.common.mongo import Database, find_in

from ..alert import ACTIVE
from ..changes import ChangeLog
from ..feed import ChangeFeed
from ..leader import Lease

log = logging.getLogger("dealerwatch.notify")

CURSOR = "support-priorities"
IDLE_SECONDS = 10.0  # with nothing new: the log is read again after this (or when the feed sees more)
STANDBY_SECONDS = 2.0
MAX_LIMIT = 200
OVERLAP_SECONDS = 5.0  # documents changed this long before the newest one read are read again (writes in flight)


def _scored(doc: dict[str, Any]) -> dict[str, Any]:
    weights = support.Weights(**doc.get("weights") or {})
    severities = [alert["severity"] for alert in doc.get("open", [])]
    doc["alert_weight"] = round(sum(weights.of(s) for s in severities), 6)
    doc["score"] = support.score(doc.get("target_gap", 0.0), doc.get("baseline_gap", 0.0), severities, weights)
    return doc


class Priorities:
    def __init__(self, db: Database, changes: ChangeLog):
        self.collection = db["support_priorities"]
        self._alerts = db["alerts"]
        self._changes = changes
        self.ranking = Ranking(self.collection)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("changed_at", ASCENDING)])

    async def _change(self, dealer_id: str, change: Callable[[dict[str, Any]], bool]) -> None:
        """Apply `change` (False: nothing to write) and the score, conditional on the version."""
        while True:
            doc = await self.collection.find_one({"_id": dealer_id}) or {"_id": dealer_id, "open": [], "v": 0}
            version = doc["v"]
            if not change(doc):
                return
            doc = _scored({**doc, "v": version + 1, "changed_at": time.time()})
            if version == 0:
                try:
                    await self.collection.insert_one(doc)
                    return
                except DuplicateKeyError:
                    continue  # another writer created it first
            result = await self.collection.replace_one({"_id": dealer_id, "v": version}, doc)
            if result.matched_count:
                return

    async def stand(self, standing: DealerStanding) -> None:
        """A dealer's standing (only a newer one replaces what is kept)."""

        def change(doc: dict[str, Any]) -> bool:
            if doc.get("at_ts") is not None and doc["at_ts"] > standing.at.timestamp():
                return False  # a redelivered older one
            running = standing.running.model_dump() if standing.running else None
            doc.update(
                dealer_name=standing.dealer_name,
                region=standing.region,
                target_gap=standing.target_gap,
                baseline_gap=standing.baseline_gap,
                running=running,
                running_id=None if running is None else running["support_id"],
                weights=standing.weights.model_dump(),
                at=standing.at,
                at_ts=standing.at.timestamp(),
                policy_version=standing.policy_version,
            )
            return True

        await self._change(standing.dealer_id, change)

    async def alerts_changed(self, dealer_id: str, changed: list[dict[str, Any]]) -> None:
        """Alerts of one dealer changed (the latest snapshot of each): its open alerts follow."""

        def change(doc: dict[str, Any]) -> bool:
            ids = {alert["alert_id"] for alert in changed}
            kept = [a for a in doc["open"] if a["alert_id"] not in ids]
            kept += [
                {
                    "alert_id": a["alert_id"],
                    "rule_id": a.get("rule_id"),
                    "severity": a.get("severity"),
                    "subject": a.get("subject"),
                }
                for a in changed
                if a.get("status") in ACTIVE
            ]
            kept.sort(key=lambda a: a["alert_id"])
            if kept == doc["open"]:
                return False
            doc["open"] = kept
            return True

        await self._change(dealer_id, change)

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
                        await self._apply(await self._alerts.find({"status": {"$in": list(ACTIVE)}}).to_list(None))
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
            projection = {"score": 1, "region": 1, "running_id": 1, "changed_at": 1}
            async for doc in self._collection.find(where, projection):
                self._keys[doc["_id"]] = (doc.get("score", 0.0), doc.get("region"), doc.get("running_id") is not None)
                newest = max(newest, doc.get("changed_at", 0.0))
            self._since = newest

    async def top(self, region: str | None, limit: int) -> tuple[list[str], list[str]]:
        await self.refresh()
        wanted = [(dealer, key) for dealer, key in self._keys.items() if region is None or key[1] == region]
        ranked = heapq.nsmallest(limit, ((-key[0], dealer) for dealer, key in wanted if not key[2]))
        running = sorted(dealer for dealer, key in wanted if key[2])[:MAX_LIMIT]
        return [dealer for _, dealer in ranked], running


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "dealer_id": doc["_id"],
        "dealer_name": doc.get("dealer_name"),
        "region": doc.get("region"),
        "score": doc.get("score", 0.0),
        "target_gap": doc.get("target_gap", 0.0),
        "baseline_gap": doc.get("baseline_gap", 0.0),
        "alert_weight": doc.get("alert_weight", 0.0),
        "open_alerts": doc.get("open", []),
        "running": doc.get("running"),
        "judged_at": doc.get("at"),
    }
