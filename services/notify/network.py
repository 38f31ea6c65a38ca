"""The dealer network as the board shows it, read from the dealer timeline: the dealer's master
data, its outlets (outlet files), its visit plans with their status, and the visit-plan report.
Whether a visit carries out a plan is decided by services/common/visit_plans.py, as in rules."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ASCENDING

from services.common import visit_plans
from services.common.mongo import Collection

MASTER_FIELDS = ("name", "tier", "region", "contact_name", "phone")
MASTER_EVENTS = ["dealer.registered", "dealer.updated"]
OUTLET_EVENTS = ["outlet.registered", "outlet.closed"]
PLAN_EVENTS = ["visit.planned", "visit.plan_cancelled"]
SALES_DAYS = 30
GROUPS = {"visitor": "visitor_id", "region": "region", "dealer": "dealer_id"}


class Network:
    def __init__(self, timeline: Collection):
        self._timeline = timeline

    async def _events(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._timeline.find(query, {"_id": 0}).sort("occurred_at", ASCENDING).to_list(None)

    async def master(self, dealer_id: str) -> dict[str, Any] | None:
        """Name, tier, region, contact and phone: each the latest given (None: never registered
        nor updated)."""
        return fold_master(await self._events({"dealer_id": dealer_id, "type": {"$in": MASTER_EVENTS}}))

    async def masters(self, dealer_ids: list[str]) -> dict[str, dict[str, Any]]:
        events = await self._events({"dealer_id": {"$in": dealer_ids}, "type": {"$in": MASTER_EVENTS}})
        by_dealer: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            by_dealer[event["dealer_id"]].append(event)
        return {dealer: master for dealer, items in by_dealer.items() if (master := fold_master(items))}

    async def outlets(self, dealer_id: str, now: dt.datetime) -> list[dict[str, Any]]:
        """Every outlet registered with the dealer: level, region, status, registered and closed,
        its last sale (quantity > 0) and net sales of the last 30 days."""
        outlets: dict[str, dict[str, Any]] = {}
        for event in await self._events({"dealer_id": dealer_id, "type": {"$in": OUTLET_EVENTS}}):
            outlet = outlets.setdefault(event["outlet_id"], {"outlet_id": event["outlet_id"], "status": "open"})
            if event["type"] == "outlet.registered":
                outlet.update({k: event.get(k) for k in ("name", "level", "region")}, registered_at=event["occurred_at"])
                outlet["status"] = "open"
                outlet.pop("closed_at", None)
            else:
                outlet.update(status="closed", closed_at=event["occurred_at"])
        if not outlets:
            return []
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
        for row in await self._timeline.aggregate(pipeline).to_list(None):
            outlets[row["_id"]].update(last_sale_at=row["last_sale_at"], net_sales_30d=row["net_sales_30d"])
        for outlet in outlets.values():
            outlet.setdefault("last_sale_at", None)
            outlet.setdefault("net_sales_30d", 0.0)
        return sorted(outlets.values(), key=lambda o: (o["status"] != "open", o["outlet_id"]))

    async def outlet_sales(self, dealer_id: str, outlet_id: str, limit: int = 50) -> list[dict[str, Any]]:
        cursor = self._timeline.find({"dealer_id": dealer_id, "type": "sale", "outlet_id": outlet_id}, {"_id": 0})
        return await cursor.sort("occurred_at", -1).limit(limit).to_list(None)

    async def plans(self, dealer_id: str, zone: ZoneInfo, now: dt.datetime) -> list[dict[str, Any]]:
        """The dealer's visit plans with their status, the latest planned_for first."""
        plans = await self._events({"dealer_id": dealer_id, "type": "visit.planned"})
        return sorted(await self._with_status(plans, zone, now), key=lambda p: p["planned_for"], reverse=True)

    async def report(
        self, group_by: str, since: dt.date, until: dt.date, zone: ZoneInfo, now: dt.datetime
    ) -> list[dict[str, Any]]:
        """Plans for days from `since` to `until` (inclusive), counted by status for each visitor,
        region (the dealer's) or dealer, with the on-time rate: done on time / plans that are due
        and not cancelled."""
        query = {"type": "visit.planned", "planned_for": {"$gte": since.isoformat(), "$lte": until.isoformat()}}
        plans = await self._with_status(await self._events(query), zone, now)
        masters = await self.masters(sorted({p["dealer_id"] for p in plans})) if group_by == "region" else {}
        rows: dict[str, dict[str, Any]] = {}
        for plan in plans:
            if group_by == "region":
                key = (masters.get(plan["dealer_id"]) or {}).get("region") or plan.get("region") or ""
            else:
                key = plan[GROUPS[group_by]]
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
        cancelled: dict[tuple[str, str], float] = {}
        for event in await self._events({"dealer_id": {"$in": dealers}, "type": "visit.plan_cancelled", "plan_id": {"$in": ids}}):
            key = (event["dealer_id"], event["plan_id"])
            cancelled[key] = min(cancelled.get(key, float("inf")), _ts(event["occurred_at"]))
        window = {"occurred_at": {"$gte": lo, "$lt": hi}}
        visits = await self._events({"dealer_id": {"$in": dealers}, "type": "visit", "$or": [window, {"plan_id": {"$in": ids}}]})
        by_dealer: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for visit in visits:
            by_dealer[visit["dealer_id"]].append(visit)
        result = []
        for (dealer_id, plan_id), plan in latest.items():
            planned_for = dt.date.fromisoformat(plan["planned_for"])
            plan_window = visit_plans.window(planned_for, zone)
            carried_out = [
                v
                for v in by_dealer[dealer_id]
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


def fold_master(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Master-data events in time order -> the dealer's master data (what is given replaces
    what was there)."""
    if not events:
        return None
    master: dict[str, Any] = {"registered": False, "registered_at": None}
    for event in events:
        if event["type"] == "dealer.registered":
            master["registered"] = True
            master["registered_at"] = master["registered_at"] or event["occurred_at"]
        master.update({k: event[k] for k in MASTER_FIELDS if event.get(k) is not None})
    return master


def _ts(moment: dt.datetime) -> float:
    """Times read back from MongoDB are naive UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
