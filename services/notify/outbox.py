"""The delivery outbox kept on each alert (`deliveries`): every notification (firing, repeat,
escalation, resolved) is an entry, sent and retried by the delivery worker, and stays as the
alert's delivery log. The alert document is claimed with a lease, so that several notify
instances never send the same entry at once; reminders and escalation are claimed the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from services.common.mongo import Collection
from services.common.timeutil import utcnow

from . import alert as alerts
from .alert import NotificationKind

EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Outbox:
    def __init__(self, alerts: Collection):
        self._alerts = alerts
        self.queued = asyncio.Event()  # set when a notice is queued here: the delivery worker wakes

    async def ensure_indexes(self) -> None:
        await self._alerts.create_index([("delivery_due_at", ASCENDING)], sparse=True)
        await self._alerts.create_index([("reminder_due_at", ASCENDING)], sparse=True)
        await self._alerts.create_index([("escalation_due_at", ASCENDING)], sparse=True)
        # group members among the alerts with something to send (claim_group)
        await self._alerts.create_index(
            [("deliveries.group", ASCENDING)],
            name="pending_groups",
            partialFilterExpression={"delivery_due_at": {"$exists": True}},
        )

    async def add_notices(self, alert_id: str, kind: NotificationKind, receivers: list[tuple[str, str]]) -> None:
        """Queue notifications of one kind (resolved, repeat, escalation) in the alert's outbox."""
        if receivers:
            await self._alerts.update_one({"_id": alert_id}, alerts.notices_queued(receivers, kind, utcnow()))
            self.queued.set()

    async def send_resolved_notices(self, alert: dict[str, Any]) -> None:
        """Tell the routes of a resolved alert that asked for it (unless it was silenced)."""
        if not alert.get("silenced_by"):
            receivers = [(r["receiver"], r["target"]) for r in alert.get("routes", []) if r["send_resolved"]]
            await self.add_notices(alert["alert_id"], "resolved", receivers)

    async def due_reminder(self) -> dict[str, Any] | None:
        """Claim one open alert whose reminder is due (and move its next reminder on)."""
        now = utcnow()
        alert = await self._alerts.find_one({**alerts.active(), "reminder_due_at": {"$lte": now}})
        if alert is None:
            return None
        condition, update = alerts.reminder_moved(alert, now)
        claimed = await self._alerts.update_one({"_id": alert["_id"], **condition}, update)
        return alert if claimed.modified_count else None

    async def escalate_due(self, target_of: Callable[[str], str]) -> tuple[dict[str, Any], list[str]] | None:
        """One open (not acknowledged) alert whose escalation time has come, escalated: its
        escalation receivers' notices queued with the claim, in one update. (None: nothing is due.)"""
        while True:
            now = utcnow()
            alert = await self._alerts.find_one({**alerts.escalating(), "escalation_due_at": {"$lte": now}})
            if alert is None:
                return None
            names = list(dict.fromkeys(n for r in alert["routes"] if r.get("escalate_after_seconds") for n in r["escalate_to"]))
            condition, update = alerts.escalated(alert, [(name, target_of(name)) for name in names], now)
            claimed = await self._alerts.update_one({"_id": alert["_id"], **condition}, update)
            if claimed.modified_count:
                self.queued.set()
                return alert, names
            # another instance took it meanwhile: the next one

    async def claim_due_delivery(self, lease_seconds: float) -> dict[str, Any] | None:
        now = utcnow()
        return await self._alerts.find_one_and_update(
            {"delivery_due_at": {"$lte": now}, **alerts.lease_free(now)},
            alerts.leased(now, lease_seconds),
            sort=[("delivery_due_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def claim_group(self, group: str, claimed_id: str, lease_seconds: float) -> list[dict[str, Any]]:
        """The other alerts with a pending delivery in this group, leased to the caller."""
        now, token = utcnow(), uuid.uuid4().hex
        await self._alerts.update_many(
            {
                "_id": {"$ne": claimed_id},
                "delivery_due_at": {"$exists": True},
                "deliveries": {"$elemMatch": {"group": group, "status": "pending"}},
                **alerts.lease_free(now),
            },
            alerts.leased(now, lease_seconds, token),
        )
        return await self._alerts.find({"lease_token": token}).sort("first_seen_at", ASCENDING).to_list(None)

    async def record_deliveries(self, alert_id: str, attempted: dict[int, dict[str, Any]]) -> None:
        """Write back the deliveries attempted (by position: notices may be added meanwhile),
        then the time the next pending one is due."""
        if attempted:
            await self._alerts.update_one({"_id": alert_id}, alerts.deliveries_recorded(attempted))
        while True:
            alert = await self._alerts.find_one({"_id": alert_id}, {"deliveries": 1})
            deliveries = alert.get("deliveries", []) if alert else []
            pending = [d["next_attempt_at"] for d in deliveries if d["status"] == "pending"]
            update = alerts.lease_released(min(pending) if pending else None)
            # only if no notice was added since the read; otherwise read again
            result = await self._alerts.update_one({"_id": alert_id, "deliveries": {"$size": len(deliveries)}}, update)
            if result.matched_count or alert is None:
                return

    async def next_delivery_due(self) -> dt.datetime | None:
        # a range on the indexed field, not `$ne: None` (which the local server answers by a scan)
        doc = await self._alerts.find_one(
            {"delivery_due_at": {"$gte": EARLIEST}}, {"delivery_due_at": 1}, sort=[("delivery_due_at", ASCENDING)]
        )
        return doc["delivery_due_at"] if doc else None

    async def next_schedule_due(self) -> dt.datetime | None:
        """The earliest reminder or escalation due among the alerts that can still have one."""
        reminder = await self._alerts.find_one(
            {"reminder_due_at": {"$gte": EARLIEST}, **alerts.active()},
            {"reminder_due_at": 1},
            sort=[("reminder_due_at", ASCENDING)],
        )
        escalation = await self._alerts.find_one(
            {"escalation_due_at": {"$gte": EARLIEST}, **alerts.escalating()},
            {"escalation_due_at": 1},
            sort=[("escalation_due_at", ASCENDING)],
        )
        due = [doc[name] for doc, name in ((reminder, "reminder_due_at"), (escalation, "escalation_due_at")) if doc]
        return min(due, default=None)
