"""The dealer network as the board shows it, read from the dealer timeline: the dealer's master
data, its outlets (outlet files), its visit plans with their status, and the visit-plan report.
Whether a visit carries out a plan is decided by services/common/visit_plans.py, as in rules.

Every read is bounded (#22: a dealer may keep 20,000 outlets and plans): outlets and plans come
a page at a time (`Page`: the ids in order, a cursor for the next), each field of the master
data is its own indexed read, and a plan's status is found among the visits of its window by
bisection, never plans × visits; the fold runs in a thread when it is large.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING, DESCENDING

from services.common import visit_plans
from services.common.mongo import Collection

MASTER_FIELDS = ("name", "tier", "region", "contact_name", "phone")
MASTER_EVENTS = ["dealer.registered", "dealer.updated"]
OUTLET_EVENTS = ["outlet.registered", "outlet.closed"]
PLAN_EVENTS = ["visit.planned", "visit.plan_cancelled"]
SALES_DAYS = 30
GROUPS = {"visitor": "visitor_id", "region": "region", "dealer": "dealer_id"}
PAGE = 200  # outlets or plans in a dealer file; the rest a page at a time
MAX_PAGE = 1000
IN_THREAD_FROM = 2000  # plans whose status is worked out off the event loop


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    next: str | None  # the cursor of the next page (None: the last)


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    """ValueError unless it is a cursor a page gave."""
    if len(cursor) > 2048:
        raise ValueError("invalid cursor: longer than any page gives")
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, RecursionError) as exc:
        raise ValueError("invalid cursor: pass the `next` of a page as it was given") from exc
    if not isinstance(position, list) or len(position) != size or not all(isinstance(p, str) for p in position):
        raise ValueError("invalid cursor: pass the `next` of a page as it was given")
    return position


class Network:
    def __init__(self, timeline: Collection):
        self._timeline = timeline

    async def ensure_indexes(self) -> None:
        # a dealer's outlets and plans by id (pages), its events of a type by time (the master data)
        await self._timeline.create_index([("dealer_id", ASCENDING), ("type", ASCENDING), ("outlet_id", ASCENDING)])
        await self._timeline.create_index([("dealer_id", ASCENDING), ("type", ASCENDING), ("plan_id", ASCENDING)])

    async def _events(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._timeline.find(query, {"_id": 0}).sort("occurred_at", ASCENDING).to_list(None)

    async def master(self, dealer_id: str) -> dict[str, Any] | None:
        """Name, tier, region, contact and phone: each the latest given (None: never registered
        nor updated). One read per field: a dealer updated 100,000 times is read as fast."""
        base = {"dealer_id": dealer_id, "type": {"$in": MASTER_EVENTS}}
        found: dict[str, Any] = {}
        for name in MASTER_FIELDS:
            doc = await self._timeline.find_one({**base, name: {"$ne": None}}, {name: 1}, sort=[("occurred_at", DESCENDING)])
            if doc is not None:
                found[name] = doc[name]
        registered = await self._timeline.find_one(
            {"dealer_id": dealer_id, "type": "dealer.registered"}, {"occurred_at": 1}, sort=[("occurred_at", ASCENDING)]
        )
        if not found and registered is None and await self._timeline.find_one(base, {"_id": 1}) is None:
            return None
        return {
            "registered": registered is not None,
            "registered_at": None if registered is None else registered["occurred_at"],
            **found,
        }

    async def regions(self, dealer_ids: list[str]) -> dict[str, str]:
        """Each dealer's region: the latest given."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"dealer_id": {"$in": dealer_ids}, "type": {"$in": MASTER_EVENTS}, "region": {"$ne": None}}},
            {"$sort": {"occurred_at": 1}},
            {"$group": {"_id": "$dealer_id", "region": {"$last": "$region"}}},
        ]
        return {row["_id"]: row["region"] async for row in self._timeline.aggregate(pipeline)}

    async def outlets(self, dealer_id: str, now: dt.datetime, cursor: str | None = None, limit: int = PAGE) -> Page:
        """The outlets registered with the dealer, by id, a page at a time: level, region,
        status, registered and closed, its last sale (quantity > 0) and net sales of 30 days."""
        ids: list[dict[str, Any]] = [
            {"$match": {"dealer_id": dealer_id, "type": {"$in": OUTLET_EVENTS}}},
            {"$group": {"_id": "$outlet_id"}},
        ]
        after = [{"$match": {"_id": {"$gt": decode_cursor(cursor, 1)[0]}}}] if cursor else []
        ordered = [*ids, *after, {"$sort": {"_id": 1}}, {"$limit": limit + 1}]
        page = [row["_id"] async for row in self._timeline.aggregate(ordered)]
        total = next(iter([row["n"] async for row in self._timeline.aggregate([*ids, {"$count": "n"}])]), 0)
        items = await self._outlet_files(dealer_id, page[:limit], now)
        return Page(items, total, encode_cursor([page[limit - 1]]) if len(page) > limit else None)

    async def outlet(self, dealer_id: str, outlet_id: str, now: dt.datetime) -> dict[str, Any] | None:
        found = await self._outlet_files(dealer_id, [outlet_id], now)
        return found[0] if found else None

    async def _outlet_files(self, dealer_id: str, outlet_ids: list[str], now: dt.datetime) -> list[dict[str, Any]]:
        if not outlet_ids:
            return []
        outlets: dict[str, dict[str, Any]] = {}
        for event in await self._events(
            {"dealer_id": dealer_id, "type": {"$in": OUTLET_EVENTS}, "outlet_id": {"$in": outlet_ids}}
        ):
            outlet = outlets.setdefault(event["outlet_id"], {"outlet_id": event["outlet_id"], "status": "open"})
            if event["type"] == "outlet.registered":
                outlet.update({k: event.get(k) for k in ("name", "level", "region")}, registered_at=event["occurred_at"])
                outlet["status"] = "open"
                outlet.pop("closed_at", None)
            else:
                outlet.update(status="closed", closed_at=event["occurred_at"])
        since = now - dt.timedelta(days=SALES_DAYS)
        pipeline = [
            {"$match": {"dealer_id": dealer_id, "type": "sale", "outlet_id": {"$in": list(outlets)}}},
            {
                "$group": {
                    "_id": "$outlet_id",
                    "last_sale_at": {"$max": {"$cond": [{"$gt": ["$quantity", 0]}, "$occurred_at", None]}},
                    "net_sales_30d": {"$sum": {"$cond": [{"$gte": ["$occurred_at", since]}, "$amount", 0]}},
                }
            },
        ]
        for row in await self._timeline.aggregate(pipeline).to_list(None) if outlets else ():
            outlets[row["_id"]].update(last_sale_at=row["last_sale_at"], net_sales_30d=row["net_sales_30d"])
        for outlet in outlets.values():
            outlet.setdefault("last_sale_at", None)
            outlet.setdefault("net_sales_30d", 0.0)
        return sorted(outlets.values(), key=lambda o: o["outlet_id"])

    async def outlet_sales(self, dealer_id: str, outlet_id: str, limit: int = 50) -> list[dict[str, Any]]:
        cursor = self._timeline.find({"dealer_id": dealer_id, "type": "sale", "outlet_id": outlet_id}, {"_id": 0})
        return await cursor.sort("occurred_at", -1).limit(limit).to_list(None)

    async def plans(
        self,
        dealer_id: str,
        zone: ZoneInfo,
        now: dt.datetime,
        cursor: str | None = None,
        limit: int = PAGE,
        outlet_id: str | None = None,
    ) -> Page:
        """The dealer's visit plans with their status, the latest planned_for first, a page at a
        time (each plan as last posted); `outlet_id`: only the plans at that outlet."""
        match: dict[str, Any] = {"dealer_id": dealer_id, "type": "visit.planned"}
        if outlet_id is not None:
            match["outlet_id"] = outlet_id
        latest: list[dict[str, Any]] = [
            {"$match": match},
            {"$sort": {"occurred_at": 1}},
            {"$group": {"_id": "$plan_id", "planned_for": {"$last": "$planned_for"}}},
        ]
        after: list[dict[str, Any]] = []
        if cursor:
            day, plan_id = decode_cursor(cursor, 2)
            after = [{"$match": {"$or": [{"planned_for": {"$lt": day}}, {"planned_for": day, "_id": {"$lt": plan_id}}]}}]
        ordered = [*latest, *after, {"$sort": {"planned_for": -1, "_id": -1}}, {"$limit": limit + 1}]
        page = [(row["planned_for"], row["_id"]) async for row in self._timeline.aggregate(ordered)]
        total = next(iter([row["n"] async for row in self._timeline.aggregate([*latest, {"$count": "n"}])]), 0)
        ids = [plan_id for _, plan_id in page[:limit]]
        postings = await self._events({**match, "plan_id": {"$in": ids}}) if ids else []
        items = await self._with_status(postings, zone, now)
        items.sort(key=lambda p: (p["planned_for"], p["plan_id"]), reverse=True)
        return Page(items, total, encode_cursor(list(page[limit - 1])) if len(page) > limit else None)

    async def report(
        self, group_by: str, since: dt.date, until: dt.date, zone: ZoneInfo, now: dt.datetime
    ) -> list[dict[str, Any]]:
        """Plans for days from `since` to `until` (inclusive), counted by status for each visitor,
        region (the dealer's) or dealer, with the on-time rate: done on time / plans that are due
        and not cancelled."""
        query = {"type": "visit.planned", "planned_for": {"$gte": since.isoformat(), "$lte": until.isoformat()}}
        plans = await self._with_status(await self._events(query), zone, now)
        regions = await self.regions(sorted({p["dealer_id"] for p in plans})) if group_by == "region" else {}
        rows: dict[str, dict[str, Any]] = {}
        for plan in plans:
            key = (regions.get(plan["dealer_id"]) or plan.get("region") or "") if group_by == "region" else plan[GROUPS[group_by]]
            row = rows.setdefault(key, {"group": key, "planned": 0, **{s: 0 for s in visit_plans.STATUSES if s != "planned"}})
            row["planned"] += 1
            if plan["status"] != "planned":
                row[plan["status"]] += 1
        for row in rows.values():
            due = row["done"] + row["done-late"] + row["missed"]
            row["pending"] = row["planned"] - due - row["cancelled"]
            row["on_time_rate"] = round(row["done"] / due, 4) if due else None
        return sorted(rows.values(), key=lambda r: (-r["planned"], r["group"]))

    async def _with_status(self, plans: list[dict[str, Any]], zone: ZoneInfo, now: dt.datetime) -> list[dict[str, Any]]:
        """The plans (latest posting of each (dealer, plan_id)) with status and the visit that
        carried each out, from the cancellations and visits of their dealers."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for plan in plans:
            latest[(plan["dealer_id"], plan["plan_id"])] = plan
        if not latest:
            return []
        dealers = sorted({dealer for dealer, _ in latest})
        days = [dt.date.fromisoformat(p["planned_for"]) for p in latest.values()]
        lo = dt.datetime.combine(min(days) - dt.timedelta(days=visit_plans.EARLY_DAYS + 1), dt.time(), zone)
        hi = dt.datetime.combine(max(days) + dt.timedelta(days=visit_plans.LATE_DAYS + 2), dt.time(), zone)
        ids = sorted({plan_id for _, plan_id in latest})
        cancellations = await self._events(
            {"dealer_id": {"$in": dealers}, "type": "visit.plan_cancelled", "plan_id": {"$in": ids}}
        )
        window = {"occurred_at": {"$gte": lo, "$lt": hi}}
        visits = await self._events({"dealer_id": {"$in": dealers}, "type": "visit", "$or": [window, {"plan_id": {"$in": ids}}]})
        if len(latest) >= IN_THREAD_FROM:  # a report of a whole network: not on the event loop
            return await asyncio.to_thread(_statuses, latest, cancellations, visits, zone, now)
        return _statuses(latest, cancellations, visits, zone, now)


def _statuses(
    latest: dict[tuple[str, str], dict[str, Any]],
    cancellations: list[dict[str, Any]],
    visits: list[dict[str, Any]],
    zone: ZoneInfo,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Each plan's status from the visits that can carry it out: those naming it, and those of
    its dealer within its window (found by bisection in time order)."""
    cancelled: dict[tuple[str, str], float] = {}
    for event in cancellations:
        key = (event["dealer_id"], event["plan_id"])
        cancelled[key] = min(cancelled.get(key, float("inf")), _ts(event["occurred_at"]))
    naming: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    by_dealer: dict[str, list[dict[str, Any]]] = defaultdict(list)  # in time order (the read's)
    for visit in visits:
        by_dealer[visit["dealer_id"]].append(visit)
        if visit.get("plan_id"):
            naming[(visit["dealer_id"], visit["plan_id"])].append(visit)
    times = {dealer: [_ts(v["occurred_at"]) for v in items] for dealer, items in by_dealer.items()}
    result = []
    for (dealer_id, plan_id), plan in latest.items():
        planned_for = dt.date.fromisoformat(plan["planned_for"])
        plan_window = visit_plans.window(planned_for, zone)
        dealer_times = times.get(dealer_id, [])
        in_window = by_dealer[dealer_id][
            bisect.bisect_left(dealer_times, plan_window[0]) : bisect.bisect_left(dealer_times, plan_window[1])
        ]
        carried_out = [
            v
            for v in [*naming.get((dealer_id, plan_id), []), *in_window]
            if visit_plans.fulfils(
                plan_id,
                plan["kind"],
                plan.get("outlet_id"),
                plan_window,
                _ts(v["occurred_at"]),
                v["kind"],
                v.get("outlet_id"),
                v.get("plan_id"),
            )
        ]
        first = min(carried_out, key=lambda v: v["occurred_at"], default=None)
        fulfilled_at = None if first is None else _ts(first["occurred_at"])
        status = visit_plans.status(planned_for, fulfilled_at, cancelled.get((dealer_id, plan_id)), now.timestamp(), zone)
        keep = ("dealer_id", "plan_id", "planned_for", "visitor_id", "kind", "outlet_id", "region")
        result.append(
            {
                **{k: plan.get(k) for k in keep},
                "status": status,
                "visited_at": None if first is None else first["occurred_at"],
                "visited_by": None if first is None else first.get("visitor_id"),
            }
        )
    return result


def _ts(moment: dt.datetime) -> float:
    """Times read back from MongoDB are naive UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
