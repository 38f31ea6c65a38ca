"""publish -> save -> ack: a rules worker killed after publishing a judgement's signals and before
storing its states is delivered those events again, and the worker after it publishes the same
signals (same alert ids, same content: notify recognises them), never fewer."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit

from conftest import free_port, wait_for
from factories import now, over_budget, sale
from helpers import TcpProxy, bind, declared, drain, events_counted, publish_events, rules_depth

from services.common.topology import Topology


def signals(amqp_url: str, queue: str) -> list[dict]:
    """The alert signals published (not the dealers' standings, which a restart sends again)."""
    found = [json.loads(m.body) for m in drain(amqp_url, queue)]
    return sorted((s for s in found if s["kind"] == "alert-signal"), key=lambda s: (s["alert_id"], s["state"]))


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
    publish_events(amqp_url, namespace, spend)

    wait_for(held.is_set)  # the flush's signals are confirmed, its states' write is held
    before = signals(amqp_url, tap)
    assert {s["rule_id"] for s in before} >= {"promotion-over-budget"}
    rules.stop(kill=True)
    proxy.close()
    assert events_counted(mongo_url, namespace, "D-1") == 3  # nothing of the spend was stored

    services("rules")  # on the database directly
    wait_for(lambda: events_counted(mongo_url, namespace, "D-1") == 4)
    wait_for(lambda: rules_depth(amqp_url, namespace) == 0)
    after = wait_for(lambda: signals(amqp_url, tap))
    assert after == before


def test_what_happened_between_two_events_of_a_dealer_is_judged_before_the_later_one(services, amqp_url, namespace):
    """A visit, then none for 45 days, then a visit: the dealer was overdue from day 31 to day 45.
    The worker judges the dealer's deadlines up to the later event before counting it, so the
    alert opens and resolves, as the backtest says; judged only at the later event, it never would."""
    from factories import visit

    (rules,) = services("rules")
    tap = f"{namespace}.test-subscriber"
    wait_for(lambda: declared(amqp_url, Topology(namespace).dead_letter_queue.name))
    bind(amqp_url, Topology(namespace).alert_signals.name, tap)
    at = now()
    publish_events(amqp_url, namespace, visit("D-1", at - dt.timedelta(days=50)), visit("D-1", at - dt.timedelta(days=5)))
    seen: list[dict] = []
    wait_for(lambda: seen.extend(signals(amqp_url, tap)) or any(s["state"] == "resolved" for s in seen))
    overdue = sorted((s for s in seen if s["rule_id"] == "visit-overdue"), key=lambda s: (s["at"], s["state"]))
    assert overdue[0]["state"] == "firing" and overdue[-1]["state"] == "resolved", overdue
    assert overdue[0]["at"] < overdue[-1]["at"] <= (at - dt.timedelta(days=5)).isoformat().replace("+00:00", "Z")
