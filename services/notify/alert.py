"""The alert: the one module that knows the alert document (collection `alerts`).

Its shape (typed), its lifecycle (open -> acknowledged -> resolved, every step kept as history),
its public view, and every change made to it: new documents, a rules signal's update, a
person's transition, a silence, a notification queued. Other modules ask this one for the
document or the update and only store or read it (store.py, outbox.py).

A condition rule that stops holding resolves its alert by itself; a person can acknowledge (with
a note) and resolve (with a cause from the list, causes.py, and a note). Every alert has an
assignee, the person whose job it is to investigate (or none); a person can move it, and add
findings to its investigation log at any time. A recurrence after a person resolved it is a new
alert. `resolution_stored_at` is the wall time of the resolution (`resolved_at` of a rules
resolve is the event time): the warnings report's handling times use wall times only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, Field

from services.common.alerts import SEVERITY_RANK, AlertSignal

Status = Literal["open", "acknowledged", "resolved"]
STATUSES: tuple[Status, ...] = ("open", "acknowledged", "resolved")
ACTIVE: tuple[Status, ...] = ("open", "acknowledged")  # someone still has to act on it
NotificationKind = Literal["firing", "repeat", "escalation", "resolved"]
RULES = "rules"  # who resolves an alert whose condition stopped holding

ESCALATING: tuple[Status, ...] = ("open",)  # nobody has taken it on: escalation applies


@dataclass(frozen=True)
class Action:
    """A person's step in the lifecycle: the board's button, the API's `POST /v1/alerts/{id}/<path>`."""

    name: str
    path: str
    starts_from: tuple[Status, ...]
    leads_to: Status
    text: str  # what the person writes with it (the body's field)
    text_required: bool
    choice: str | None = None  # a field picked from a list (resolve: the cause, causes.py)


ACTIONS = (
    Action("acknowledge", "ack", ("open",), "acknowledged", "note", text_required=False),
    Action("resolve", "resolve", ACTIVE, "resolved", "note", text_required=False, choice="cause"),
)
# the state an action leads to -> (states it may start from, that state)
TRANSITIONS: dict[str, tuple[tuple[Status, ...], Status]] = {a.leads_to: (a.starts_from, a.leads_to) for a in ACTIONS}


def lifecycle() -> dict[str, Any]:
    """The lifecycle as the board reads it (its filters and buttons restate nothing)."""
    return {
        "statuses": list(STATUSES),
        "active": list(ACTIVE),
        "actions": [
            {
                "name": a.name,
                "path": a.path,
                "from": list(a.starts_from),
                "text": a.text,
                "text_required": a.text_required,
                "choice": a.choice,
            }
            for a in ACTIONS
        ],
    }


# what nobody outside notify needs: the delivery worker's leases, schedules, the change mark
BOOKKEEPING = ("delivery_due_at", "delivery_lease_until", "lease_token", "reminder_due_at", "escalation_due_at", "unlogged")
PRIVATE = ("_id", "routes", *BOOKKEEPING)  # routes: the plans the outbox follows


class HistoryEntry(TypedDict):
    action: str
    by: str
    at: dt.datetime
    text: str | None
    to: NotRequired[str | None]  # assigned: the new assignee
    cause: NotRequired[str]  # resolved by a person: the cause's id


class RoutePlan(TypedDict):
    """What one route the alert reached asks for: kept with it so that reminders, escalation
    and resolved notices follow the routes it was sent by."""

    receiver: str
    target: str
    send_resolved: bool
    repeat_seconds: float | None
    escalate_after_seconds: float | None
    escalate_to: list[str]
    group_seconds: float | None


class Delivery(TypedDict, total=False):
    """One notification in the alert's outbox, and its log."""

    kind: NotificationKind
    receiver: str
    target: str  # what may be shown of the receiver: scheme and host
    group: str | None
    status: Literal["pending", "delivered", "failed", "silenced"]
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    delivered_at: dt.datetime | None
    log: list[dict[str, Any]]


class Schedules(TypedDict, total=False):
    reminder_due_at: dt.datetime
    escalation_due_at: dt.datetime


class AlertDocument(Schedules, total=False):
    _id: str
    alert_id: str
    rule_id: str
    dealer_id: str
    dealer_name: str | None
    subject: str | None
    severity: str
    severity_rank: int
    summary: str
    summaries: dict[str, str]  # by language: the board and receivers pick their reader's
    details: dict[str, Any]
    owner: str | None
    assignee: str | None
    labels: dict[str, str]
    status: Status
    opened_at: dt.datetime
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: str
    resolution_stored_at: dt.datetime
    count: int
    policy_version: str
    created_at: dt.datetime
    updated_at: dt.datetime
    routes: list[RoutePlan]
    deliveries: list[Delivery]
    previous_alert_id: str | None
    recurrence: dict[str, Any]
    silenced_by: list[str]
    history: list[HistoryEntry]
    # bookkeeping (BOOKKEEPING: never shown)
    delivery_due_at: dt.datetime
    delivery_lease_until: dt.datetime | None
    lease_token: str
    unlogged: dt.datetime


# --- a person's action (the API's bodies) ---


class Acknowledge(BaseModel):
    by: str = Field(min_length=1, max_length=128, description="Who acknowledges (recorded).")
    note: str | None = Field(default=None, max_length=2000)


class Resolve(BaseModel):
    by: str = Field(min_length=1, max_length=128, description="Who resolves (recorded).")
    cause: str = Field(
        min_length=1,
        max_length=2000,
        description="The cause's id from the list (GET /v1/lifecycle); without `note`, text in words is "
        "kept as cause `other` with it as the note (the shape before causes were counted).",
    )
    note: str | None = Field(default=None, max_length=2000, description="What was found and done.")


class Assign(BaseModel):
    by: str = Field(min_length=1, max_length=128, description="Who moves it (recorded).")
    to: str | None = Field(min_length=1, max_length=128, description="The new assignee; null: unassigned.")
    note: str | None = Field(default=None, max_length=2000)


class Finding(BaseModel):
    by: str = Field(min_length=1, max_length=128, description="Who found it (recorded).")
    text: str = Field(min_length=1, max_length=2000, description="What was found.")


# --- reading ---


def public_view(alert: dict[str, Any]) -> dict[str, Any]:
    """What the API, the stream, the board and receivers see of an alert: everything but the
    plans and the bookkeeping (the delivery log shows receivers by name and scheme and host)."""
    return {key: value for key, value in alert.items() if key not in PRIVATE}


PUBLIC_PROJECTION = {field: 0 for field in PRIVATE}  # the same, as a MongoDB projection


def active() -> dict[str, Any]:
    """The alerts someone still has to act on, as a MongoDB query."""
    return {"status": {"$in": list(ACTIVE)}}


def escalating() -> dict[str, Any]:
    """The alerts nobody has taken on yet, as a MongoDB query."""
    return {"status": {"$in": list(ESCALATING)}}


def resolved_by_a_person(alert: dict[str, Any]) -> bool:
    return alert["status"] == "resolved" and alert.get("resolved_by") != RULES


# --- new documents ---


def history_entry(action: str, by: str, at: dt.datetime, text: str | None = None) -> HistoryEntry:
    return {"action": action, "by": by, "at": at, "text": text}


def route_plan(
    receiver: str,
    target: str,
    *,
    send_resolved: bool = False,
    repeat_seconds: float | None = None,
    escalate_after_seconds: float | None = None,
    escalate_to: tuple[str, ...] = (),
    group_seconds: float | None = None,
) -> RoutePlan:
    return {
        "receiver": receiver,
        "target": target,
        "send_resolved": send_resolved,
        "repeat_seconds": repeat_seconds,
        "escalate_after_seconds": escalate_after_seconds,
        "escalate_to": list(escalate_to),
        "group_seconds": group_seconds,
    }


def new_delivery(
    receiver: str, target: str, now: dt.datetime, kind: NotificationKind = "firing", group_seconds: float | None = None
) -> Delivery:
    """One entry of the outbox. With a group window, the first notifications to one receiver
    within the same window (a fixed grid on the clock, so every instance agrees) share a `group`
    and go out together when the window ends."""
    due, group = now, None
    if group_seconds:
        window = int(now.timestamp() // group_seconds)
        group = f"{receiver}|{group_seconds:g}|{window}"
        due = dt.datetime.fromtimestamp((window + 1) * group_seconds, dt.UTC)
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


def schedules(routes: list[RoutePlan], severity: str, now: dt.datetime) -> Schedules:
    """When the first reminder and the escalation (critical alerts only) are due."""
    times: Schedules = {}
    repeats = [r["repeat_seconds"] for r in routes if r.get("repeat_seconds")]
    if repeats:
        times["reminder_due_at"] = now + dt.timedelta(seconds=min(s for s in repeats if s))
    escalations = [r["escalate_after_seconds"] for r in routes if r.get("escalate_after_seconds") and r.get("escalate_to")]
    if escalations and severity == "critical":
        times["escalation_due_at"] = now + dt.timedelta(seconds=min(s for s in escalations if s))
    return times


def new_document(
    signal: AlertSignal,
    routes: list[RoutePlan],
    now: dt.datetime,
    previous: str | None,
    silenced_by: list[str],
    assignee: str | None = None,
) -> AlertDocument:
    """The alert a signal opens (or, for a resolve that arrives first, opens resolved), with its
    notifications queued unless a silence mutes it."""
    resolved = signal.state == "resolved"
    opened = history_entry("opened", RULES, signal.opened_at, f"recurred after {previous} was resolved" if previous else None)
    deliveries = [] if resolved else [new_delivery(r["receiver"], r["target"], now, "firing", r["group_seconds"]) for r in routes]
    document: AlertDocument = {
        "_id": signal.alert_id,
        "alert_id": signal.alert_id,
        "rule_id": signal.rule_id,
        "dealer_id": signal.dealer_id,
        "dealer_name": signal.dealer_name,
        "subject": signal.subject,
        "severity": signal.severity,
        "severity_rank": SEVERITY_RANK[signal.severity],
        "summary": signal.summary,
        "summaries": signal.summaries,
        "details": signal.details,
        "owner": signal.owner,
        "assignee": assignee,
        "labels": signal.labels,
        "status": "resolved" if resolved else "open",
        "opened_at": signal.opened_at,
        "first_seen_at": signal.at,
        "last_seen_at": signal.at,
        "resolved_at": signal.at if resolved else None,
        **({"resolved_by": RULES, "resolution_stored_at": now} if resolved else {}),
        "count": signal.firing_count,
        "policy_version": signal.policy_version,
        "created_at": now,
        "updated_at": now,
        "routes": routes,
        "deliveries": deliveries,
        "previous_alert_id": previous,
        "history": [opened]
        + ([history_entry("resolved", RULES, signal.at, "the condition no longer holds")] if resolved else []),
    }
    if silenced_by:
        document["silenced_by"] = silenced_by
        for delivery in deliveries:
            delivery["status"], delivery["last_error"] = "silenced", f"silenced by {', '.join(silenced_by)}"
    elif deliveries:
        document["delivery_due_at"] = min(d["next_attempt_at"] for d in deliveries)
    if not resolved and not silenced_by:
        times = schedules(routes, signal.severity, now)
        if "reminder_due_at" in times:
            document["reminder_due_at"] = times["reminder_due_at"]
        if "escalation_due_at" in times:
            document["escalation_due_at"] = times["escalation_due_at"]
    return document


def recurrence_of(alert_id: str, base: int, at: dt.datetime) -> dict[str, Any]:
    """The alert that carries on an episode after a person resolved its alert: its id derived
    from the resolved one, so that a redelivered signal finds it again."""
    return {"alert_id": hashlib.sha256(f"{alert_id}|{base}".encode()).hexdigest()[:24], "base": base, "at": at}


# --- changes (condition, update) ---

STOP_SCHEDULES = {"reminder_due_at": "", "escalation_due_at": ""}  # no more reminders or escalation


def fired_again(signal: AlertSignal, now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """A later firing of an open or acknowledged alert: newer numbers, never older ones."""
    condition = {"count": {"$lt": signal.firing_count}, "status": {"$ne": "resolved"}}
    fields = {
        "count": signal.firing_count,
        "last_seen_at": signal.at,
        "summary": signal.summary,
        "summaries": signal.summaries,
        "dealer_name": signal.dealer_name,
        "details": signal.details,
        "updated_at": now,
    }
    return condition, {"$set": fields}


def resolved_by_rules(signal: AlertSignal, now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The condition no longer holds."""
    update = {
        "$set": {
            "status": "resolved",
            "resolved_at": signal.at,
            "resolved_by": RULES,
            "resolution_stored_at": now,
            "updated_at": now,
        },
        "$push": {"history": history_entry("resolved", RULES, signal.at, "the condition no longer holds")},
        "$unset": dict(STOP_SCHEDULES),
    }
    return active(), update


def transition(
    action: str, by: str, text: str | None, now: dt.datetime, cause: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A person's action. Resolved (with a cause id and a note): no more reminders or escalation;
    acknowledged (with a note): someone is on it, no escalation."""
    allowed, target = TRANSITIONS[action]
    fields: dict[str, Any] = {"status": target, "updated_at": now, f"{action}_at": now, f"{action}_by": by}
    entry = history_entry(action, by, now, text)
    if action == "acknowledged":
        fields["acknowledged_note"] = text
    else:
        assert cause is not None, "a person's resolve names its cause"
        fields.update(resolved_cause=cause, resolved_note=text, resolution_stored_at=now)
        entry["cause"] = cause
    stop = dict(STOP_SCHEDULES) if target == "resolved" else {"escalation_due_at": ""}
    update = {"$set": fields, "$push": {"history": entry}, "$unset": stop}
    return {"status": {"$in": list(allowed)}}, update


MAX_ENTRIES_ADDED = 1000  # assignments and findings of one alert: its document stays small (#22)
ROOM_LEFT = {"$or": [{"entries_added": {"$exists": False}}, {"entries_added": {"$lt": MAX_ENTRIES_ADDED}}]}


def assigned(to: str | None, by: str, note: str | None, now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The alert moved to another assignee (or to none); a resolved alert keeps the one it had."""
    entry = history_entry("assigned", by, now, note)
    entry["to"] = to
    update = {"$set": {"assignee": to}, "$push": {"history": entry}, "$inc": {"entries_added": 1}}
    return {**active(), **ROOM_LEFT}, update


def noted(by: str, text: str, now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """A finding added to the investigation log, in any state."""
    return dict(ROOM_LEFT), {"$push": {"history": history_entry("noted", by, now, text)}, "$inc": {"entries_added": 1}}


def silenced(silence_id: str, by: str, comment: str, now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """A silence that starts mutes an open alert: marked, no reminders or escalation, pending
    notifications dropped (the worker checks the mark)."""
    update = {
        "$addToSet": {"silenced_by": silence_id},
        "$unset": dict(STOP_SCHEDULES),
        "$set": {"updated_at": now},
        "$push": {"history": history_entry("silenced", by, now, comment)},
    }
    return active(), update


def notices_queued(receivers: list[tuple[str, str]], kind: NotificationKind, now: dt.datetime) -> dict[str, Any]:
    """Notifications of one kind (resolved, repeat, escalation) added to the outbox."""
    return {
        "$push": {"deliveries": {"$each": [new_delivery(name, target, now, kind) for name, target in receivers]}},
        "$min": {"delivery_due_at": now},
    }


# --- bookkeeping: the store's change marks, the outbox's leases and schedules ---


def inserted(document: AlertDocument, mark: dict[str, str]) -> dict[str, Any]:
    """A new alert, written only if none with its id exists, carrying the store's mark."""
    return {"$setOnInsert": {**document, "unlogged": mark}}


def marked(update: dict[str, Any], mark: dict[str, str], now: dt.datetime) -> dict[str, Any]:
    """An update carrying the store's mark: the change it is, until the change log has it."""
    return {**update, "$set": {**update.get("$set", {}), "updated_at": now, "unlogged": mark}}


UNMARKED = {"$unset": {"unlogged": ""}}  # the change log has it


def recurrence_claimed(recurrence: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The successor of an episode whose alert a person resolved, named once."""
    return {"recurrence": None}, {"$set": {"recurrence": recurrence}}


def lease_free(now: dt.datetime) -> dict[str, Any]:
    """Alerts no sender holds (or whose sender's lease ran out), as a MongoDB query."""
    return {"$or": [{"delivery_lease_until": None}, {"delivery_lease_until": {"$lte": now}}]}


def leased(now: dt.datetime, seconds: float, token: str | None = None) -> dict[str, Any]:
    """Held by one sender for a while (a group's members: with the claim's token)."""
    fields: dict[str, Any] = {"delivery_lease_until": now + dt.timedelta(seconds=seconds)}
    if token is not None:
        fields["lease_token"] = token
    return {"$set": fields}


def deliveries_recorded(attempted: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The deliveries a sender attempted, by position (notices may have been added meanwhile)."""
    return {"$set": {f"deliveries.{index}": delivery for index, delivery in attempted.items()}}


def lease_released(next_due: dt.datetime | None) -> dict[str, Any]:
    """The sender is done: the next pending delivery's time, or nothing left to send."""
    update: dict[str, Any] = {"$unset": {"delivery_lease_until": "", "lease_token": ""}}
    if next_due is not None:
        update["$set"] = {"delivery_due_at": next_due}
    else:
        update["$unset"]["delivery_due_at"] = ""
    return update


def reminder_moved(alert: dict[str, Any], now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """A reminder claimed: the next one after the shortest interval of the alert's routes."""
    interval = min(r["repeat_seconds"] for r in alert["routes"] if r.get("repeat_seconds"))
    condition = {"reminder_due_at": alert["reminder_due_at"]}  # not claimed by another instance meanwhile
    return condition, {"$set": {"reminder_due_at": now + dt.timedelta(seconds=interval)}}


def escalated(alert: dict[str, Any], receivers: list[tuple[str, str]], now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """Escalated once: the escalation time taken and its notices queued in one update (a failure
    between two writes would lose them), unless another instance took it meanwhile."""
    condition = {"escalation_due_at": alert["escalation_due_at"]}
    return condition, {"$unset": {"escalation_due_at": ""}, **notices_queued(receivers, "escalation", now)}
