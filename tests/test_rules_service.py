"""The rules service as a process on the real broker and the MongoDB protocol."""

from __future__ import annotations

import json

import httpx
import pymongo

from conftest import wait_for
import datetime as dt

from factories import now, promotion_planned, promotion_spend, sale
from helpers import drain, publish, queue_depth


def alerts(notify) -> list[dict]:
    params = {"rule_id": "promotion-over-budget"}
    return httpx.get(f"{notify.url}/v1/alerts", params=params).json()["items"]


def persisted_spend(mongo_url, database, dealer, promotion) -> float | None:
    with pymongo.MongoClient(mongo_url) as client:
        doc = client[database]["rules_dealers"].find_one({"_id": dealer})
    spends = [p["spend"] for p in (doc or {}).get("promotions", []) if p["id"] == promotion]
    return spends[0] if spends else None


def dealers_known(rules) -> int:
    return httpx.get(f"{rules.url}/readyz").json()["dealers"]


def test_state_survives_a_crash_of_the_rules_service(services, amqp_url, mongo_url, namespace):
    ingest, rules, notify = services("ingest", "rules", "notify")
    at = now()
    first = [promotion_planned("D-1", at, "P-1", budget="1000"), promotion_spend("D-1", at, "P-1", "600")]
    assert httpx.post(f"{ingest.url}/v1/events", json=first).status_code == 202
    wait_for(lambda: persisted_spend(mongo_url, namespace, "D-1", "P-1") == 600.0)
    rules.stop(kill=True)  # SIGKILL: no goodbye, no final flush
    second = [promotion_spend("D-1", at, "P-1", "500")]
    assert httpx.post(f"{ingest.url}/v1/events", json=second).status_code == 202
    (rules,) = services("rules")
    alert = wait_for(lambda: alerts(notify))[0]
    assert alert["details"]["measures"]["promotion_spend"] == 1100.0  # 600 from before the crash


def test_redelivered_message_changes_nothing(services, amqp_url, namespace):
    rules, notify = services("rules", "notify")
    at = now()
    planned = json.dumps(promotion_planned("D-1", at, "P-1", budget="1000")).encode()
    spend = json.dumps(promotion_spend("D-1", at, "P-1", "700", event_id="same")).encode()
    publish(amqp_url, f"{namespace}.events", "promotion.spend.D-1", planned, spend, spend, spend)
    wait_for(lambda: queue_depth(amqp_url, f"{namespace}.rules.events") == 0 and dealers_known(rules) == 1)
    other = json.dumps(promotion_spend("D-1", at, "P-1", "301")).encode()
    publish(amqp_url, f"{namespace}.events", "promotion.spend.D-1", other)
    alert = wait_for(lambda: alerts(notify))[0]
    assert alert["details"]["measures"]["promotion_spend"] == 1001.0


def test_unprocessable_message_is_dead_lettered_with_its_reason(services, amqp_url, namespace):
    (rules,) = services("rules")
    publish(amqp_url, f"{namespace}.events", "sale.D-1", b"{not json", b'{"type": "sale", "dealer_id": "D-1"}')
    wait_for(lambda: queue_depth(amqp_url, f"{namespace}.dead-letter") == 2)
    dead = drain(amqp_url, f"{namespace}.dead-letter")
    assert dead[0].body == b"{not json"  # kept as it was, for a replay
    reasons = [m.headers["x-dealerwatch-error"] for m in dead]
    assert all(r.startswith("invalid event:") for r in reasons)
    assert "event_id" in reasons[1] and "Field required" in reasons[1]
    assert dead[0].headers["x-original-routing-key"] == "sale.D-1"
    assert queue_depth(amqp_url, f"{namespace}.rules.events") == 0  # acked, not looping
    assert "Traceback" not in rules.log()


def test_events_beyond_the_lateness_bound_are_dead_lettered_with_the_reason(services, amqp_url, namespace):
    (rules,) = services("rules")
    at = now()
    fresh = json.dumps(sale("D-1", at)).encode()
    late = json.dumps(sale("D-1", at - dt.timedelta(days=7, seconds=1))).encode()
    in_time = json.dumps(sale("D-1", at - dt.timedelta(days=6))).encode()
    publish(amqp_url, f"{namespace}.events", "sale.D-1", fresh, late, in_time)
    wait_for(lambda: queue_depth(amqp_url, f"{namespace}.dead-letter") == 1)
    (dead,) = drain(amqp_url, f"{namespace}.dead-letter")
    assert dead.body == late
    assert dead.headers["x-dealerwatch-error"].startswith("too late: event at") and "more than 7d older" in dead.headers["x-dealerwatch-error"]
