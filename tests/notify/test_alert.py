"""The alert (notify/alert.py) without a database: new documents, notifications, schedules, the
public view and the lifecycle's vocabulary."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import alert_signal

from services.notify import alert as alerts

NOW = dt.datetime(2026, 3, 1, 12, 0, 7, tzinfo=dt.UTC)


def plan(receiver: str, **options) -> alerts.RoutePlan:
    return alerts.route_plan(receiver, f"https://{receiver}.example", **options)


def test_a_firing_signal_opens_an_alert_with_a_notification_per_route():
    routes = [plan("ops"), plan("north", group_seconds=60)]
    doc = alerts.new_document(alert_signal("A1", 3), routes, NOW, previous=None, silenced_by=[])
    assert (doc["status"], doc["count"], doc["alert_id"], doc["_id"]) == ("open", 3, "A1", "A1")
    assert [(d["receiver"], d["status"], d["kind"]) for d in doc["deliveries"]] == [
        ("ops", "pending", "firing"),
        ("north", "pending", "firing"),
    ]
    ops, north = doc["deliveries"]
    assert ops["next_attempt_at"] == NOW and ops["group"] is None
    # grouped: due when its minute on the clock ends, so that every instance agrees
    assert north["next_attempt_at"] == dt.datetime(2026, 3, 1, 12, 1, tzinfo=dt.UTC)
    assert doc["delivery_due_at"] == NOW
    assert [h["action"] for h in doc["history"]] == ["opened"]


def test_a_silenced_alert_is_stored_with_its_notifications_marked_silenced_and_nothing_due():
    routes = [plan("ops", repeat_seconds=600)]
    doc = alerts.new_document(alert_signal("A1", 1), routes, NOW, previous=None, silenced_by=["S-1"])
    assert doc["silenced_by"] == ["S-1"]
    assert [(d["status"], d["last_error"]) for d in doc["deliveries"]] == [("silenced", "silenced by S-1")]
    assert "delivery_due_at" not in doc and "reminder_due_at" not in doc


def test_a_resolve_that_arrives_first_opens_the_alert_resolved_with_nothing_to_send():
    doc = alerts.new_document(alert_signal("A1", 2, "resolved"), [plan("ops")], NOW, previous=None, silenced_by=[])
    assert doc["status"] == "resolved" and doc["resolved_at"] == doc["last_seen_at"]
    assert doc["deliveries"] == [] and "delivery_due_at" not in doc
    assert [h["action"] for h in doc["history"]] == ["opened", "resolved"]


def test_a_recurrence_names_the_alert_a_person_resolved():
    doc = alerts.new_document(alert_signal("A2", 1), [], NOW, previous="A1", silenced_by=[])
    assert doc["previous_alert_id"] == "A1" and "A1" in doc["history"][0]["text"]
    first, again = alerts.recurrence_of("A1", 4, NOW), alerts.recurrence_of("A1", 4, NOW)
    assert first == again  # a redelivered signal finds the same successor
    assert alerts.recurrence_of("A1", 5, NOW)["alert_id"] != first["alert_id"]


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("critical", {"reminder_due_at": NOW + dt.timedelta(seconds=300), "escalation_due_at": NOW + dt.timedelta(seconds=900)}),
        ("warning", {"reminder_due_at": NOW + dt.timedelta(seconds=300)}),  # only critical alerts escalate
    ],
)
def test_reminders_follow_the_shortest_interval_and_only_critical_alerts_escalate(severity, expected):
    routes = [
        plan("ops", repeat_seconds=600),
        plan("north", repeat_seconds=300, escalate_after_seconds=900, escalate_to=("duty",)),
        plan("south", escalate_after_seconds=60),  # no one to escalate to: no escalation
    ]
    assert alerts.schedules(routes, severity, NOW) == expected


def test_notifications_within_one_group_window_share_the_group_and_the_time_they_go_out():
    first = alerts.new_delivery("ops", "t", NOW, group_seconds=60)
    later = alerts.new_delivery("ops", "t", NOW + dt.timedelta(seconds=50), group_seconds=60)
    next_window = alerts.new_delivery("ops", "t", NOW + dt.timedelta(seconds=53), group_seconds=60)
    other = alerts.new_delivery("north", "t", NOW, group_seconds=60)
    assert first["group"] == later["group"] and first["next_attempt_at"] == later["next_attempt_at"]
    assert next_window["group"] != first["group"] and other["group"] != first["group"]


def test_the_public_view_is_one_definition_for_the_api_the_stream_and_receivers():
    routes = [plan("ops", repeat_seconds=60)]
    doc = dict(alerts.new_document(alert_signal("A1", 1, severity="critical"), routes, NOW, previous=None, silenced_by=[]))
    doc.update(delivery_lease_until=NOW, lease_token="t", unlogged={"change": "opened", "token": "x"})
    view = alerts.public_view(doc)
    assert set(view) == set(doc) - set(alerts.PRIVATE)
    assert {"routes", "reminder_due_at", "lease_token", "unlogged", "_id"}.isdisjoint(view)
    assert {"deliveries", "history", "labels", "summary"} <= set(view)
    assert {name: 0 for name in alerts.PRIVATE} == alerts.PUBLIC_PROJECTION  # the same, for MongoDB


def test_the_lifecycle_says_which_state_each_action_starts_from():
    assert alerts.ACTIVE == ("open", "acknowledged") and set(alerts.ACTIVE) < set(alerts.STATUSES)
    condition, update = alerts.transition("acknowledged", "li.na", "on it", NOW)
    assert condition == {"status": {"$in": ["open"]}}
    assert update["$set"]["status"] == "acknowledged" and update["$set"]["acknowledged_note"] == "on it"
    assert set(update["$unset"]) == {"escalation_due_at"}  # reminders go on, escalation stops
    condition, update = alerts.transition("resolved", "li.na", "restocked", NOW, "stock-out")
    assert condition == {"status": {"$in": ["open", "acknowledged"]}}
    assert set(update["$unset"]) == set(alerts.STOP_SCHEDULES)
    assert (update["$set"]["resolved_cause"], update["$set"]["resolved_note"]) == ("stock-out", "restocked")
    assert update["$set"]["resolution_stored_at"] == NOW  # the wall time: what handling times count
    assert update["$push"]["history"]["action"] == "resolved" and update["$push"]["history"]["cause"] == "stock-out"


def test_who_resolved_an_alert_decides_whether_its_episode_recurs():
    assert alerts.resolved_by_a_person({"status": "resolved", "resolved_by": "li.na"})
    assert not alerts.resolved_by_a_person({"status": "resolved", "resolved_by": alerts.RULES})
    assert not alerts.resolved_by_a_person({"status": "acknowledged"})
