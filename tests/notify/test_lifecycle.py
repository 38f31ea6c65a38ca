"""Alert lifecycle on the real broker and MongoDB protocol: acknowledge, resolve, history, keys."""

from __future__ import annotations

import httpx
from conftest import wait_for
from factories import signal
from helpers import publish

from services.common.topology import Topology

KEY = {"Authorization": "Bearer ops-key"}


def alert(notify, alert_id):
    return httpx.get(f"{notify.url}/v1/alerts/{alert_id}", headers=KEY).json()


def test_acknowledge_then_resolve_with_history(services, amqp_url, namespace):
    (notify,) = services("notify", env={"DEALERWATCH_API_KEYS": "ops-key"})
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("L1", 1))
    wait_for(lambda: httpx.get(f"{notify.url}/v1/alerts/L1", headers=KEY).status_code == 200)

    assert httpx.post(f"{notify.url}/v1/alerts/L1/ack", json={"by": "li.na"}).status_code == 401
    acked = httpx.post(f"{notify.url}/v1/alerts/L1/ack", json={"by": "li.na", "note": "calling the dealer"}, headers=KEY)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "li.na" and acked.json()["acknowledged_note"] == "calling the dealer"
    assert httpx.post(f"{notify.url}/v1/alerts/L1/ack", json={"by": "x"}, headers=KEY).status_code == 409

    # further firings while acknowledged update the numbers, not the status
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("L1", 2))
    wait_for(lambda: alert(notify, "L1")["count"] == 2)
    assert alert(notify, "L1")["status"] == "acknowledged"

    missing_cause = httpx.post(f"{notify.url}/v1/alerts/L1/resolve", json={"by": "li.na"}, headers=KEY)
    assert missing_cause.status_code == 422
    resolved = httpx.post(
        f"{notify.url}/v1/alerts/L1/resolve", json={"by": "li.na", "cause": "stock-out at the dealer"}, headers=KEY
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    history = [(h["action"], h["by"], h["text"]) for h in resolved.json()["history"]]
    assert history == [
        ("opened", "rules", None),
        ("acknowledged", "li.na", "calling the dealer"),
        ("resolved", "li.na", "stock-out at the dealer"),
    ]
    assert httpx.post(f"{notify.url}/v1/alerts/L1/ack", json={"by": "x"}, headers=KEY).status_code == 409
    assert httpx.post(f"{notify.url}/v1/alerts/nope/ack", json={"by": "x"}, headers=KEY).status_code == 404
    assert [
        a["alert_id"] for a in httpx.get(f"{notify.url}/v1/alerts", params={"status": "resolved"}, headers=KEY).json()["items"]
    ] == ["L1"]


def test_rules_resolve_an_acknowledged_alert(services, amqp_url, namespace):
    (notify,) = services("notify")
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("L2", 1))
    wait_for(lambda: httpx.get(f"{notify.url}/v1/alerts/L2", headers=KEY).status_code == 200)
    assert httpx.post(f"{notify.url}/v1/alerts/L2/ack", json={"by": "wang"}).status_code == 200  # development mode
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("L2", 1, "resolved"))
    done = wait_for(lambda: (a := alert(notify, "L2"))["status"] == "resolved" and a)
    assert done["resolved_by"] == "rules"
    assert [h["action"] for h in done["history"]] == ["opened", "acknowledged", "resolved"]


def test_a_recurrence_after_a_person_resolved_is_a_new_alert(services, amqp_url, namespace):
    (notify,) = services("notify")
    exchange = Topology(namespace).alert_signals.name
    publish(amqp_url, exchange, "k", signal("L3", 1), signal("L3", 2))
    wait_for(
        lambda: httpx.get(f"{notify.url}/v1/alerts/L3", headers=KEY).status_code == 200 and alert(notify, "L3")["count"] == 2
    )
    httpx.post(f"{notify.url}/v1/alerts/L3/resolve", json={"by": "li.na", "cause": "called the dealer"}).raise_for_status()

    # a firing from before the resolve changes nothing; the rule firing again opens a new alert,
    # and redelivering that firing does not open a third
    publish(amqp_url, exchange, "k", signal("L3", 2), signal("L3", 3), signal("L3", 3), signal("L3", 4))

    def successor():
        items = httpx.get(f"{notify.url}/v1/alerts", params={"dealer_id": "D-L3"}, headers=KEY).json()["items"]
        newer = [a for a in items if a["alert_id"] != "L3"]
        return len(items) == 2 and newer[0]["count"] == 2 and newer[0]

    new = wait_for(successor)
    assert new["status"] == "open" and new["previous_alert_id"] == "L3"
    assert new["history"][0]["text"] == "recurred after L3 was resolved"
    old = alert(notify, "L3")
    assert old["status"] == "resolved" and old["resolved_by"] == "li.na" and old["count"] == 2
    assert old["recurrence"]["alert_id"] == new["alert_id"]

    # the episode's resolved signal closes the alert that carries it on
    publish(amqp_url, exchange, "k", signal("L3", 4, "resolved"))
    wait_for(lambda: alert(notify, new["alert_id"])["status"] == "resolved")
    assert alert(notify, new["alert_id"])["resolved_by"] == "rules"
    assert len(httpx.get(f"{notify.url}/v1/alerts", params={"dealer_id": "D-L3"}, headers=KEY).json()["items"]) == 2
