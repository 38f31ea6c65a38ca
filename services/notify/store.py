"""Alerts in MongoDB (collection `alerts`): signals applied, people's actions, reading.

One document per episode, `_id` = the episode's `alert_id` (a unique index by
construction), so redelivered signals and several notify instances can never
create a second alert for one episode. Every update is conditional and
monotonic, which makes applying a signal twice, or out of order, harmless.
Its notifications live on the alert itself (outbox.py), written in the same
write; so does a mark for its change-log entry (changes.py), so that no change
is lost if notify stops between the two.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.common import mongo
from services.common.alerts import SEVERITY_RANK, AlertSignal, PromotionEvaluation
from services.common.settings import Settings
from services.common.timeutil import utcnow

from .changes import ChangeLog
from .lifecycle import STATUSES, history_entry, transition_update
from .outbox import Outbox, new_delivery, schedules
from .silences import SilenceStore
from .silences import query as silence_query

# bookkeeping on an alert document that nobody outside this module needs to see
BOOKKEEPING = ("delivery_due_at", "delivery_lease_until", "lease_token", "reminder_due_at", "escalation_due_at", "unlogged")
INTERNAL_FIELDS = {"_id": 0, **{field: 0 for field in BOOKKEEPING}}
UNLOGGED_GRACE_SECONDS = 5.0
SEVERITIES = {rank: name for name, rank in SEVERITY_RANK.items()}


class AlertStore:
    def __init__(self, settings: Settings):
        self._client, db = mongo.database(settings)
        self._alerts = db["alerts"]
        self._evaluations = db["promotion_evaluations"]
        self.outbox = Outbox(self._alerts)
        self.changes = ChangeLog(db)
        self.silences = SilenceStore(db)
        self.db = db

    async def ensure_indexes(self) -> None:
        await self._alerts.create_index([("first_seen_at", DESCENDING), ("_id", DESCENDING)])
        await self._alerts.create_index([("dealer_id", ASCENDING), ("first_seen_at", DESCENDING)])
        await self._alerts.create_index([("status", ASCENDING), ("first_seen_at", DESCENDING)])
        await self.outbox.ensure_indexes()
        # only alerts whose change is not logged yet (a moment, normally): the sweep reads few
        await self._alerts.create_index([("updated_at", ASCENDING)], name="unlogged",
                                        partialFilterExpression={"unlogged": {"$exists": True}})
        await self.changes.ensure_indexes()

    async def ping(self) -> bool:
        return await mongo.ping(self._client)

    def close(self) -> None:
        self._client.close()

    # --- signals ---

    async def apply(self, signal: AlertSignal, routes: list[dict], previous: str | None = None) -> bool:
        """Store a signal; True if it created an alert (the caller then notifies).

        routes: the plans of the routes it reaches (router.plans), kept with the alert;
        previous: the alert a person resolved before this episode recurred."""
        now = utcnow()
        resolved = signal.state == "resolved"
        document = _new_document(signal, routes, now, previous)
        muted_by = await self.silences.muting(document, now) if not resolved else []
        if muted_by:
            document["silenced_by"] = muted_by
            for delivery in document["deliveries"]:
                delivery.update(status="silenced", last_error=f"silenced by {', '.join(muted_by)}")
        elif document["deliveries"]:
            document["delivery_due_at"] = min(d["next_attempt_at"] for d in document["deliveries"])
        if not resolved and not muted_by:
            document.update(schedules(routes, signal.severity, now))
        change = "resolved" if resolved else "opened"
        document["unlogged"] = mark = _mark(change)
        try:
            result = await self._alerts.update_one({"_id": signal.alert_id}, {"$setOnInsert": document}, upsert=True)
            if result.upserted_id is not None:
                await self._log(change, document, mark)
                return True
        except DuplicateKeyError:
            pass  # another instance inserted it first: update below
        change = "resolved" if resolved else "updated"
        mark = _mark(change)
        if resolved:
            condition = {"status": {"$in": ["open", "acknowledged"]}}
            update = {
                "$set": {"status": "resolved", "resolved_at": signal.at, "resolved_by": "rules", "updated_at": now, "unlogged": mark},
                "$push": {"history": history_entry("resolved", "rules", signal.at, "the condition no longer holds")},
                "$unset": {"reminder_due_at": "", "escalation_due_at": ""},  # no more reminders or escalation
            }
        else:
            condition = {"count": {"$lt": signal.firing_count}, "status": {"$ne": "resolved"}}
            update = {"$set": {
                "count": signal.firing_count,
                "last_seen_at": signal.at,
                "summary": signal.summary,
                "details": signal.details,
                "updated_at": now,
                "unlogged": mark,
            }}
        changed = await self._alerts.find_one_and_update(
            {"_id": signal.alert_id, **condition}, update, return_document=ReturnDocument.AFTER
        )
        if changed is not None:
            await self._log(change, changed, mark)
            if resolved:
                await self._send_resolved_notices(changed)
            return False
        recurrence = await self._recurrence(signal)
        if recurrence is None:
            return False
        # the episode goes on after a person resolved its alert: its signals now belong to the new alert
        successor = signal.model_copy(update={
            "alert_id": recurrence["alert_id"], "opened_at": recurrence["at"], "firing_count": signal.firing_count - recurrence["base"],
        })
        return await self.apply(successor, routes, previous=signal.alert_id)

    async def _recurrence(self, signal: AlertSignal) -> dict | None:
        """The alert that carries on an episode whose alert a person resolved: created by the
        first later firing (its id derived from the resolved one, so redelivery finds it again)."""
        alert = await self._alerts.find_one({"_id": signal.alert_id}, {"status": 1, "resolved_by": 1, "count": 1, "recurrence": 1})
        if alert is None or alert["status"] != "resolved" or alert.get("resolved_by") == "rules":
            return None
        if alert.get("recurrence") or signal.state == "resolved" or signal.firing_count <= alert["count"]:
            return alert.get("recurrence")  # (an old firing from before the resolve is ignored)
        base = alert["count"]
        recurrence = {"alert_id": hashlib.sha256(f"{signal.alert_id}|{base}".encode()).hexdigest()[:24], "base": base, "at": signal.at}
        claimed = await self._alerts.update_one({"_id": signal.alert_id, "recurrence": None}, {"$set": {"recurrence": recurrence}})
        if claimed.modified_count:
            return recurrence
        return (await self._alerts.find_one({"_id": signal.alert_id}, {"recurrence": 1}))["recurrence"]

    async def _log(self, change: str, alert: dict | None, mark: dict) -> None:
        """The change log entry of a write that carried `mark`; then the mark goes. A crash in
        between leaves the mark, and `log_unlogged` writes the entry later: no change is lost."""
        if alert is None:
            return
        await self.changes.record(change, public_view(alert))
        await self._alerts.update_one({"_id": alert["alert_id"], "unlogged.token": mark["token"]}, {"$unset": {"unlogged": ""}})

    async def log_unlogged(self) -> int:
        """Change log entries for writes whose writer stopped before logging them."""
        cutoff = utcnow() - dt.timedelta(seconds=UNLOGGED_GRACE_SECONDS)
        stale = await self._alerts.find({"unlogged": {"$exists": True}, "updated_at": {"$lt": cutoff}}).to_list(100)
        for alert in stale:
            await self._log(alert["unlogged"]["change"], alert, alert["unlogged"])
        return len(stale)

    async def _send_resolved_notices(self, alert: dict) -> None:
        """Tell the routes of a resolved alert that asked for it (unless it was silenced)."""
        if not alert.get("silenced_by"):
            receivers = [(r["receiver"], r["target"]) for r in alert.get("routes", []) if r["send_resolved"]]
            await self.outbox.add_notices(alert["alert_id"], "resolved", receivers)

    async def keep_evaluation(self, evaluation: PromotionEvaluation) -> None:
        """Every ended promotion's evaluation, effective or not (the dealer's file)."""
        document = evaluation.model_dump(mode="python")
        document["_id"] = f"{evaluation.dealer_id}\x1f{evaluation.promotion_id}"
        await self._evaluations.replace_one({"_id": document["_id"]}, document, upsert=True)

    async def evaluations(self, dealer_id: str) -> list[dict]:
        docs = await self._evaluations.find({"dealer_id": dealer_id}, {"_id": 0}).sort("at", DESCENDING).to_list(None)
        return docs

    async def act(self, alert_id: str, action: str, by: str, text: str | None) -> tuple[dict | None, bool]:
        """A person's transition: (the alert after it, or as it is, and whether it happened)."""
        condition, update = transition_update(action, by, text, utcnow())
        update["$set"]["unlogged"] = mark = _mark(action)
        # resolved: no more reminders or escalation; acknowledged: someone is on it, no escalation
        update["$unset"] = {"reminder_due_at": "", "escalation_due_at": ""} if action == "resolved" else {"escalation_due_at": ""}
        changed = await self._alerts.find_one_and_update(
            {"_id": alert_id, **condition}, update, projection=INTERNAL_FIELDS, return_document=ReturnDocument.AFTER
        )
        if changed is not None:
            await self._log(action, changed, mark)
            if action == "resolved":
                await self._send_resolved_notices(changed)
            return changed, True
        return await self.get(alert_id), False

    async def silence_open_alerts(self, silence: dict, now: dt.datetime) -> int:
        """A silence that starts now also mutes the open alerts it matches: marked, no more
        reminders or escalation, pending notifications dropped (the worker checks the mark)."""
        if silence["starts_at"] > now:
            return 0
        active = {"status": {"$in": ["open", "acknowledged"]}}
        ids = [doc["_id"] async for doc in self._alerts.find({**active, **silence_query(silence["matchers"])}, {"_id": 1})]
        for alert_id in ids:
            mark = _mark("silenced")
            changed = await self._alerts.find_one_and_update(
                {"_id": alert_id, **active},
                {"$addToSet": {"silenced_by": silence["silence_id"]},
                 "$unset": {"reminder_due_at": "", "escalation_due_at": ""},
                 "$set": {"updated_at": now, "unlogged": mark},
                 "$push": {"history": history_entry("silenced", silence["created_by"], now, silence["comment"])}},
                projection=INTERNAL_FIELDS, return_document=ReturnDocument.AFTER,
            )
            if changed is not None:
                await self._log("silenced", changed, mark)
        return len(ids)

    async def dealers_with_open_alerts(self) -> list[dict]:
        pipeline = [
            {"$match": {"status": {"$in": ["open", "acknowledged"]}}},
            {"$group": {"_id": "$dealer_id", "open_alerts": {"$sum": 1}, "severity_rank": {"$max": "$severity_rank"},
                        "oldest_open_since": {"$min": "$first_seen_at"}}},
        ]
        return [
            {"dealer_id": row["_id"], "open_alerts": row["open_alerts"], "highest_severity": SEVERITIES[row["severity_rank"]],
             "oldest_open_since": row["oldest_open_since"]}
            async for row in self._alerts.aggregate(pipeline)
        ]

    # --- reading ---

    async def counts(self, query: dict) -> dict:
        by_severity = {name: 0 for name in SEVERITY_RANK}
        by_status = {name: 0 for name in STATUSES}
        pipeline = [{"$match": query}, {"$group": {"_id": {"severity": "$severity", "status": "$status"}, "n": {"$sum": 1}}}]
        async for row in self._alerts.aggregate(pipeline):
            by_severity[row["_id"]["severity"]] += row["n"]
            by_status[row["_id"]["status"]] += row["n"]
        return {"total": sum(by_status.values()), "by_severity": by_severity, "by_status": by_status}

    async def get(self, alert_id: str) -> dict | None:
        return await self._alerts.find_one({"_id": alert_id}, INTERNAL_FIELDS)

    async def list(self, filters: dict, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
        """Newest first (by first_seen_at, then alert_id); keyset pagination."""
        query = dict(filters)
        if cursor:
            at, alert_id = decode_cursor(cursor)
            query["$or"] = [{"first_seen_at": {"$lt": at}}, {"first_seen_at": at, "_id": {"$lt": alert_id}}]
        docs = await (
            self._alerts.find(query, {k: 0 for k in INTERNAL_FIELDS if k != "_id"})
            .sort([("first_seen_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit + 1)
            .to_list(None)
        )
        next_cursor = encode_cursor(docs[limit - 1]) if len(docs) > limit else None
        for doc in docs:
            doc.pop("_id", None)
        return docs[:limit], next_cursor

def public_view(alert: dict) -> dict:
    """What receivers, the change log and the stream see of an alert (no outbox, no bookkeeping)."""
    return {key: value for key, value in alert.items() if key not in _NOT_PUBLIC}


_NOT_PUBLIC = {"_id", "deliveries", "routes", *BOOKKEEPING}


def encode_cursor(doc: dict) -> str:
    raw = json.dumps([doc["first_seen_at"].isoformat(), doc["_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, alert_id = json.loads(base64.urlsafe_b64decode(padded))
        return dt.datetime.fromisoformat(at), str(alert_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc


def _mark(change: str) -> dict:
    return {"change": change, "token": uuid.uuid4().hex}


def _new_document(signal: AlertSignal, routes: list[dict], now: dt.datetime, previous: str | None) -> dict:
    resolved = signal.state == "resolved"
    opened = history_entry("opened", "rules", signal.opened_at, f"recurred after {previous} was resolved" if previous else None)
    return {
        "alert_id": signal.alert_id,
        "rule_id": signal.rule_id,
        "dealer_id": signal.dealer_id,
        "subject": signal.subject,
        "severity": signal.severity,
        "severity_rank": SEVERITY_RANK[signal.severity],
        "summary": signal.summary,
        "details": signal.details,
        "owner": signal.owner,
        "labels": signal.labels,
        "status": "resolved" if resolved else "open",
        "opened_at": signal.opened_at,
        "first_seen_at": signal.at,
        "last_seen_at": signal.at,
        "resolved_at": signal.at if resolved else None,
        "count": signal.firing_count,
        "policy_version": signal.policy_version,
        "created_at": now,
        "updated_at": now,
        "routes": routes,
        "deliveries": [] if resolved else [new_delivery(r["receiver"], r["target"], now, "firing", r.get("group_seconds")) for r in routes],
        "previous_alert_id": previous,
        "history": [opened]
        + ([history_entry("resolved", "rules", signal.at, "the condition no longer holds")] if resolved else []),
    }
