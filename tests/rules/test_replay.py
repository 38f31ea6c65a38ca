"""publish -> save -> ack: a rules worker killed after publishing a judgement's signals and before
storing its states is delivered those events again, and the worker after it publishes the same
signals (same alert ids, same content: notify recognises them), never fewer."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pymongo
from conftest import free_port, wait_for
from factories import now, over_budget, promotion_spend, sale
from helpers import TcpProxy, bind, declared, drain, publish_events, rules_depth

from services.common.topology import Topology


def signals(amqp_url: str, queue: str) -> list[dict]:
    return sorted((json.loads(m.body) for m in drain(amqp_url, queue)), key=lambda s: (s["alert_id"], s["state"]))


def events_counted(mongo_url: str, database: str, dealer: str) -> int | None:
    with pymongo.MongoClient(mongo_url) as client:
        doc = client[database]["rules_dealers"].find_one({"_id": dealer})
    return None if doc is None else doc["events"]


def test_a_worker_killed_between_publishing_and_saving_is_replayed_to_the_same_signals(services, amqp_url, mongo_url, namespace):
    database = urlsplit(mongo_url)
    proxy = TcpProxy(free_port(), (database.hostname, database.port)).start()
    proxied = mongo_url.replace(f":{database.port}/", f":{proxy.port}/")
    (rules,) = services("rules", env={"DEALERWATCH_MONGO_URL": proxied})
    tap = f"{namespace}.test-subscriber"  # (deleted with the namespace)
    wait_for(lambda: declared(amqp_url, Topology(namespace).dead_letter_queue.name))  # the topology is declared
    bind(amqp_url, Topology(namespace).alert_signals.name, tap)
    at = now()
    planned, approved, spend = over_budget("D-1", at)
    publish_events(amqp_url, namespace, sale("D-1", at, "50.00"), planned, approved)
    wait_for(lambda: events_counted(mongo_url, namespace, "D-1") == 3)
    held = proxy.hold_writes_to("rules_dealers")
    publish_events(amqp_url, namespace, spend, promotion_spend("D-1", at, "P-1", "3"))

    wait_for(held.is_set)  # the flush's signals are confirmed, its states' write is held
    before = signals(amqp_url, tap)
    assert {s["rule_id"] for s in before} >= {"promotion-over-budget"}
    rules.stop(kill=True)
    proxy.close()
    assert events_counted(mongo_url, namespace, "D-1") == 3  # nothing of the spends was stored

    services("rules")  # on the database directly
    wait_for(lambda: events_counted(mongo_url, namespace, "D-1") == 5)
    wait_for(lambda: rules_depth(amqp_url, namespace) == 0)
    after = wait_for(lambda: signals(amqp_url, tap))
    assert after == before
