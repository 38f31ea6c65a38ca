"""The delivery outbox kept on each alert (`deliveries`): every notification (firing, repeat,
escalation, resolved) is an entry, sent and retried by the delivery worker, and stays as the
alert's delivery log. The alert document is claimed with a lease, so that several notify
instances never send the same entry at once; reminders and escalation are claimed the same way.
"""

from __future__ import annotations

import datetime as dt
import uuid

from pymongo import ASCENDING, ReturnDocument

from services.common.timeutil import utcnow


class Outbox:
    def __init__(self, alerts):
        self._alerts = alerts

    async def ensure_indexes(self) -> None:
        await self._alerts.create_index([("delivery_due_at", ASCENDING)], sparse=True)
        await self._alerts.create_index([("reminder_due_at", ASCENDING)], sparse=True)
        await self._alerts.create_index([("escalation_due_at", ASCENDING)], sparse=True)
        # group members among the alerts with something to send (claim_group)
        await self._alerts.create_index([("deliveries.group", ASCENDING)], name="pending_groups",
                                        partialFilterExpression={"delivery_due_at": {"$exists": True}})

    async def add_notices(self, alert_id: str, kind: str, receivers: list[tuple[str, str]]) -> None:
        """Queue notifications of one kind (resolved, repeat, escalation) in the alert's outbox."""
        if not receivers:
            return
        now = utcnow()
        await self._alerts.update_one(
            {"_id": alert_id},
            {"$push": {"deliveries": {"$each": [new_delivery(name, target, now, kind) for name, target in receivers]}},
             "$min": {"delivery_due_at": now}},
        )

    async def due_reminder(self) -> dict | None:
        """Claim one open alert whose reminder is due (and move its next reminder on)."""
        now = utcnow()
        alert = await self._alerts.find_one({"status": {"$in": ["open", "acknowledged"]}, "reminder_due_at": {"$lte": now}})
        if alert is None:
            return None
        interval = min(r["repeat_seconds"] for r in alert["routes"] if r.get("repeat_seconds"))
        claimed = await self._alerts.update_one(
            {"_id": alert["_id"], "reminder_due_at": alert["reminder_due_at"]},
            {"$set": {"reminder_due_at": now + dt.timedelta(seconds=interval)}},
        )
        return alert if claimed.modified_count else None

    async def due_escalation(self) -> dict | None:
        """Claim one open (not acknowledged) alert whose escalation time has come."""
        return await self._alerts.find_one_and_update(
            {"status": "open", "escalation_due_at": {"$lte": utcnow()}},
            {"$unset": {"escalation_due_at": ""}},
        )

    async def claim_due_delivery(self, lease_seconds: float) -> dict | None:
        now = utcnow()
        return await self._alerts.find_one_and_update(
            {
                "delivery_due_at": {"$lte": now},
                "$or": [{"delivery_lease_until": None}, {"delivery_lease_until": {"$lte": now}}],
            },
            {"$set": {"delivery_lease_until": now + dt.timedelta(seconds=lease_seconds)}},
            sort=[("delivery_due_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def claim_group(self, group: str, claimed_id: str, lease_seconds: float) -> list[dict]:
        """The other alerts with a pending delivery in this group, leased to the caller."""
        now, token = utcnow(), uuid.uuid4().hex
        await self._alerts.update_many(
            {
                "_id": {"$ne": claimed_id},
                "delivery_due_at": {"$exists": True},
                "deliveries": {"$elemMatch": {"group": group, "status": "pending"}},
                "$or": [{"delivery_lease_until": None}, {"delivery_lease_until": {"$lte": now}}],
            },
            {"$set": {"delivery_lease_until": now + dt.timedelta(seconds=lease_seconds), "lease_token": token}},
        )
        return await self._alerts.find({"lease_token": token}).sort("first_seen_at", ASCENDING).to_list(None)

    async def record_deliveries(self, alert_id: str, attempted: dict[int, dict]) -> None:
        """Write back the deliveries attempted (by position: notices may be added meanwhile),
        then the time the next pending one is due."""
        if attempted:
            await self._alerts.update_one({"_id": alert_id}, {"$set": {f"deliveries.{index}": d for index, d in attempted.items()}})
        while True:
            alert = await self._alerts.find_one({"_id": alert_id}, {"deliveries": 1})
            deliveries = alert.get("deliveries", []) if alert else []
            pending = [d["next_attempt_at"] for d in deliveries if d["status"] == "pending"]
            update: dict = {"$unset": {"delivery_lease_until": "", "lease_token": ""}}
            if pending:
                update["$set"] = {"delivery_due_at": min(pending)}
            else:
                update["$unset"]["delivery_due_at"] = ""
            # only if no notice was added since the read; otherwise read again
            result = await self._alerts.update_one({"_id": alert_id, "deliveries": {"$size": len(deliveries)}}, update)
            if result.matched_count or alert is None:
                return

    async def next_delivery_due(self) -> dt.datetime | None:
        doc = await self._alerts.find_one(
            {"delivery_due_at": {"$ne": None}}, {"delivery_due_at": 1}, sort=[("delivery_due_at", ASCENDING)]
        )
        return doc["delivery_due_at"] if doc else None


def schedules(routes: list[dict], severity: str, now: dt.datetime) -> dict:
    times = {}
    repeats = [r["repeat_seconds"] for r in routes if r.get("repeat_seconds")]
    if repeats:
        times["reminder_due_at"] = now + dt.timedelta(seconds=min(repeats))
    escalations = [r["escalate_after_seconds"] for r in routes if r.get("escalate_after_seconds") and r.get("escalate_to")]
    if escalations and severity == "critical":
        times["escalation_due_at"] = now + dt.timedelta(seconds=min(escalations))
    return times


def new_delivery(receiver: str, target: str, now: dt.datetime, kind: str = "firing", group_seconds: float | None = None) -> dict:
    """One entry of an alert's outbox and delivery log. With a group window, the first
    notifications to one receiver within the same window (a fixed grid on the clock, so every
    instance agrees) share a `group` and go out together when the window ends."""
    due, group = now, None
    if group_seconds:
        window = int(now.timestamp() // group_seconds)
        group = f"{receiver}|{group_seconds:g}|{window}"
        due = dt.datetime.fromtimestamp((window + 1) * group_seconds, dt.timezone.utc)
    return {
        "kind": kind,
        "receiver": receiver,
        "target": target,
        "group": group,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": due,
        "last_error": None,
        "delivered_at": None,
    }
