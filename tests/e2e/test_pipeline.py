"""End to end on real components: HTTP -> ingest -> RabbitMQ -> rules -> RabbitMQ -> notify ->
MongoDB protocol + webhook."""

from __future__ import annotations

import base64
import datetime as dt

import httpx
import pytest
from conftest import free_port, wait_for
from factories import dealer_registered, now, over_budget, promotion_approved, promotion_planned, promotion_spend, sale
from helpers import WebhookReceiver

from services.common.topology import Topology


@pytest.fixture
def receiver():
    hook = WebhookReceiver(free_port())
    yield hook
    hook.stop()


def post(ingest, events) -> None:
    response = httpx.post(f"{ingest.url}/v1/events", json=events, timeout=15)
    assert response.status_code == 202, response.text


BUDGET = "promotion-over-budget"


def alerts(notify, **params) -> list[dict]:
    return httpx.get(f"{notify.url}/v1/alerts", params=params).json()["items"]


def test_events_become_stored_and_delivered_alerts(services, receiver):
    receiver.start()
    ingest, rules, notify = services("ingest", "rules", "notify", env={"DEALERWATCH_WEBHOOK_URLS": receiver.url})
    at = now()
    post(
        ingest,
        [
            promotion_planned("D-100", at, "P-7", budget="1000", owner="Wang Fang"),
            promotion_approved("D-100", at, "P-7"),
            promotion_spend("D-100", at, "P-7", "800"),
            promotion_spend("D-100", at, "P-7", "300.50"),
            # never visited, last sale 31 days ago: the clock raises visit-overdue and dealer-inactive
            sale("D-200", at - dt.timedelta(days=31)),
            dealer_registered("D-200", at - dt.timedelta(days=31)),  # else unregistered-dealer too
        ],
    )
    found = wait_for(lambda: len(alerts(notify)) == 3 and alerts(notify))
    by_rule = {a["rule_id"]: a for a in found}
    assert set(by_rule) == {"promotion-over-budget", "visit-overdue", "dealer-inactive"}
    budget = by_rule["promotion-over-budget"]
    assert budget["dealer_id"] == "D-100" and budget["owner"] == "Wang Fang"
    assert budget["severity"] == "critical" and budget["status"] == "open"
    assert budget["details"]["measures"] == {"promotion_budget": 1000.0, "promotion_spend": 1100.5}
    assert "1,100.50" in budget["summary"] and "Wang Fang" in budget["summary"]
    overdue = by_rule["visit-overdue"]
    assert overdue["dealer_id"] == "D-200" and overdue["details"]["measures"]["days_since_visit"] > 30
    assert overdue["policy_version"] == budget["policy_version"] != ""
    for field in ("alert_id", "summary", "details", "first_seen_at", "last_seen_at", "status", "severity"):
        assert field in budget
    delivered = wait_for(lambda: len(receiver.received) == 3 and receiver.received)
    assert sorted(a["rule_id"] for a in delivered) == ["dealer-inactive", "promotion-over-budget", "visit-overdue"]
    assert httpx.get(f"{notify.url}/v1/alerts/{budget['alert_id']}").json()["deliveries"][0]["status"] == "delivered"


def test_further_firings_update_the_same_alert(services):
    ingest, rules, notify = services("ingest", "rules", "notify")
    at = now()
    post(ingest, [promotion_planned("D-1", at, "P-1", budget="100"), promotion_spend("D-1", at, "P-1", "150")])
    first = wait_for(lambda: alerts(notify, rule_id=BUDGET))[0]
    post(ingest, [promotion_spend("D-1", at + dt.timedelta(seconds=1), "P-1", "20")])
    updated = wait_for(lambda: (a := alerts(notify, rule_id=BUDGET)) and a[0]["count"] == 2 and a)
    assert len(updated) == 1 and updated[0]["alert_id"] == first["alert_id"]
    assert updated[0]["details"]["measures"]["promotion_spend"] == 170.0


def test_a_retried_event_is_counted_once(services):
    ingest, rules, notify = services("ingest", "rules", "notify")
    at = now()
    spend = promotion_spend("D-1", at, "P-1", "600", event_id="erp-42")
    post(ingest, [promotion_planned("D-1", at, "P-1", budget="1000"), spend])
    post(ingest, [spend])  # the integrator retries: 600 + 600 would exceed the budget
    post(ingest, [spend, promotion_spend("D-1", at, "P-1", "500")])  # a real second spend
    alert = wait_for(lambda: alerts(notify, rule_id=BUDGET))[0]
    assert alert["details"]["measures"]["promotion_spend"] == 1100.0  # not 2300


def test_receiver_down_alert_stored_then_delivered_when_back(services, receiver):
    ingest, rules, notify = services("ingest", "rules", "notify", env={"DEALERWATCH_WEBHOOK_URLS": receiver.url})
    at = now()
    post(ingest, over_budget("D-9", at, "P-9"))
    alert = wait_for(lambda: alerts(notify))[0]
    failing = wait_for(
        lambda: (d := httpx.get(f"{notify.url}/v1/alerts/{alert['alert_id']}").json()["deliveries"][0])["attempts"] >= 2 and d
    )
    assert failing["status"] == "pending" and failing["last_error"] == "could not connect"  # short, no host or port
    receiver.start()
    wait_for(lambda: receiver.received)
    assert [a["alert_id"] for a in receiver.received] == [alert["alert_id"]]
    assert receiver.headers[0]["Idempotency-Key"] == f"{alert['alert_id']}/0"  # its first notification


def test_listing_filters_and_pages(services):
    ingest, rules, notify = services("ingest", "rules", "notify")
    at = now()
    events = []
    for n in range(5):
        dealer, promotion = f"D-{n}", f"P-{n}"
        events += [
            promotion_planned(dealer, at + dt.timedelta(seconds=n), promotion, budget="1"),
            promotion_approved(dealer, at + dt.timedelta(seconds=n), promotion),
            promotion_spend(dealer, at + dt.timedelta(seconds=n), promotion, "2"),
        ]
    post(ingest, events)
    wait_for(lambda: len(alerts(notify)) == 5)
    pages, cursor = [], None
    while True:
        body = httpx.get(f"{notify.url}/v1/alerts", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        pages.append([a["dealer_id"] for a in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [["D-4", "D-3"], ["D-2", "D-1"], ["D-0"]]  # newest first, nothing twice
    assert [a["dealer_id"] for a in alerts(notify, dealer_id="D-2")] == ["D-2"]
    assert alerts(notify, rule_id="visit-overdue") == []
    assert len(alerts(notify, status="open", rule_id="promotion-over-budget")) == 5
    since = (at + dt.timedelta(seconds=3)).isoformat()
    assert [a["dealer_id"] for a in alerts(notify, since=since)] == ["D-4", "D-3"]
    assert httpx.get(f"{notify.url}/v1/alerts/nope").status_code == 404
    assert httpx.get(f"{notify.url}/v1/alerts", params={"cursor": "garbage"}).status_code == 400
    nested = base64.urlsafe_b64encode(b"[" * 30_000).decode()  # deeper than the JSON decoder goes: was a 500
    assert httpx.get(f"{notify.url}/v1/alerts", params={"cursor": nested}).status_code == 400


def test_delivery_gives_up_after_its_attempts_and_dead_letters_the_reason(services, amqp_url, namespace):
    import json

    from helpers import drain, queue_depth

    dead_end = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    ingest, rules, notify = services(
        "ingest", "rules", "notify", env={"DEALERWATCH_WEBHOOK_URLS": dead_end, "DEALERWATCH_DELIVERY_MAX_ATTEMPTS": "2"}
    )
    at = now()
    post(ingest, over_budget("D-8", at, "P-8"))
    alert = wait_for(lambda: alerts(notify, rule_id=BUDGET))[0]
    failed = wait_for(
        lambda: (
            (d := httpx.get(f"{notify.url}/v1/alerts/{alert['alert_id']}").json()["deliveries"][0])["status"] == "failed" and d
        )
    )
    assert failed["attempts"] == 2 and failed["last_error"] == "could not connect"
    wait_for(lambda: queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 1)
    (dead,) = drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    assert dead.headers["x-dealerwatch-error"].startswith("delivery to webhook-1 failed 2 times")
    assert json.loads(dead.body)["alert"]["alert_id"] == alert["alert_id"]
