"""The rules service as a process on the real broker and the MongoDB protocol."""

from __future__ import annotations

import datetime as dt
import json
import time

import httpx
import pymongo
from conftest import wait_for
from factories import now, promotion_planned, promotion_spend, sale
from helpers import bind, declared, drain, event_key, publish, publish_events, queue_depth, rules_depth, unacked, unbind

from services.common.topology import Topology


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
    publish(amqp_url, Topology(namespace).events.name, event_key("promotion.spend", "D-1"), planned, spend, spend, spend)
    wait_for(
        lambda: (
            queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 0
            and rules_depth(amqp_url, namespace) == 0
            and dealers_known(rules) == 1
        )
    )
    other = json.dumps(promotion_spend("D-1", at, "P-1", "301")).encode()
    publish(amqp_url, Topology(namespace).events.name, event_key("promotion.spend", "D-1"), other)
    alert = wait_for(lambda: alerts(notify))[0]
    assert alert["details"]["measures"]["promotion_spend"] == 1001.0


def test_unprocessable_message_is_dead_lettered_with_its_reason(services, amqp_url, namespace):
    (rules,) = services("rules")
    publish(
        amqp_url, Topology(namespace).events.name, event_key("sale", "D-1"), b"{not json", b'{"type": "sale", "dealer_id": "D-1"}'
    )
    wait_for(lambda: queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 2)
    dead = drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    assert dead[0].body == b"{not json"  # kept as it was, for a replay
    reasons = [m.headers["x-dealerwatch-error"] for m in dead]
    assert all(r.startswith("invalid event:") for r in reasons)
    assert not any("errors.pydantic.dev" in r for r in reasons)  # what is wrong, not where to read about it
    assert "event_id" in reasons[1] and "Field required" in reasons[1]
    assert dead[0].headers["x-original-routing-key"] == event_key("sale", "D-1")
    assert rules_depth(amqp_url, namespace) == 0  # not looping
    wait_for(lambda: unacked(namespace) == 0)  # acked once dead-lettered (not held until the connection goes)
    assert "Traceback" not in rules.log()


def test_events_beyond_the_lateness_bound_are_dead_lettered_with_the_reason(services, amqp_url, namespace):
    (rules,) = services("rules")
    at = now()
    fresh = json.dumps(sale("D-1", at)).encode()
    late = json.dumps(sale("D-1", at - dt.timedelta(days=7, seconds=1))).encode()
    in_time = json.dumps(sale("D-1", at - dt.timedelta(days=6))).encode()
    publish(amqp_url, Topology(namespace).events.name, event_key("sale", "D-1"), fresh, late, in_time)
    wait_for(lambda: queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 1)
    (dead,) = drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    assert dead.body == late
    assert (
        dead.headers["x-dealerwatch-error"].startswith("too late: event at")
        and "more than 7d older" in dead.headers["x-dealerwatch-error"]
    )
    assert "delivered again" not in dead.headers["x-dealerwatch-error"]  # its first delivery: nothing to explain


async def test_a_batch_stored_but_not_acked_is_recognised_when_it_comes_again(
    service_env, amqp_url, mongo_url, namespace, monkeypatch
):
    """Killed after storing a batch of history and before its ack reached the broker: the batch
    (a month of one dealer's sales) is delivered again, and every event is known: nothing is
    counted twice or dead-lettered as too late. In process, to stop exactly there."""
    import asyncio

    from services.common.settings import Settings
    from services.rules import policy
    from services.rules import service as rules_service

    env = {k.removeprefix("DEALERWATCH_").lower(): v for k, v in service_env.items() if k.startswith("DEALERWATCH_")}
    settings = Settings(**{**env, "clock_grace_seconds": 300, "clock_hold_seconds": 600})  # a backfill: held
    real_ack, dying, acked = rules_service.ack_batch, asyncio.Event(), []

    async def ack_unless_dying(messages):
        if not dying.is_set():
            await real_ack(messages)
            acked.extend(messages)

    monkeypatch.setattr(rules_service, "ack_batch", ack_unless_dying)
    monkeypatch.setattr(rules_service, "FLUSH_SECONDS", 1.0)  # the month arrives as one batch
    start = now() - dt.timedelta(days=90)
    first, second = (
        [json.dumps(sale("D-1", start + dt.timedelta(days=d))).encode() for d in days] for days in (range(30), range(30, 60))
    )

    async def stored_events() -> int:
        doc = await asyncio.to_thread(lambda: pymongo.MongoClient(mongo_url)[namespace]["rules_dealers"].find_one({"_id": "D-1"}))
        return (doc or {}).get("events", 0)

    async def until(predicate, seconds=30):
        for _ in range(int(seconds * 20)):
            if await predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("not reached")

    dying_one = rules_service.RulesService(settings, policy.load(settings.policy_file))
    await dying_one.start()
    await asyncio.to_thread(publish, amqp_url, Topology(namespace).events.name, event_key("sale", "D-1"), *first)
    await until(lambda: _equals(stored_events(), 30))
    await until(lambda: _true(len(acked) == 30))  # the first month is acked
    dying.set()  # from now on its acks never reach the broker
    await asyncio.to_thread(publish, amqp_url, Topology(namespace).events.name, event_key("sale", "D-1"), *second)
    await until(lambda: _equals(stored_events(), 60))
    for task in dying_one._tasks:  # it dies: no final flush, the connection goes
        task.cancel()
    await dying_one.ownership.close()  # its partitions' unacked messages go back to their queues
    await dying_one.broker.stop()
    dying_one.store.close()

    dying.clear()
    successor = rules_service.RulesService(settings, policy.load(settings.policy_file))
    await successor.start()
    try:
        # a marker after the redelivered month, in the same partition queue: handled after it
        marker = json.dumps(sale("D-1", start + dt.timedelta(days=60))).encode()
        await asyncio.to_thread(publish, amqp_url, Topology(namespace).events.name, event_key("sale", "D-1"), marker)
        await until(lambda: _true("D-1" in successor.core.states and successor.core.states["D-1"].events >= 61))
        assert successor.core.states["D-1"].events == 61  # the redelivered month was recognised, not counted again
        assert await asyncio.to_thread(queue_depth, amqp_url, Topology(namespace).dead_letter_queue.name) == 0
    finally:
        await successor.stop()


async def _equals(awaitable, value) -> bool:
    return await awaitable == value


async def _zero(awaitable) -> bool:
    return await awaitable == 0


async def _true(value: bool) -> bool:
    return value


def test_an_event_routed_to_another_partitions_queue_is_dead_lettered_with_the_reason(services, amqp_url, namespace):
    """A publisher with another hash or partition count: the worker must not count a dealer it
    does not own (its owner would count it too), and says so."""
    from services.common.partitions import partition_of

    (rules,) = services("rules")
    home = partition_of("D-1", 4)
    stray = json.dumps(sale("D-1", now())).encode()
    publish(amqp_url, Topology(namespace).events.name, f"p{(home + 1) % 4}.sale.D-1", stray)
    wait_for(lambda: queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 1)
    (dead,) = drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    assert dead.body == stray
    assert f"belongs to partition {home}, not {(home + 1) % 4}" in dead.headers["x-dealerwatch-error"]
    assert dealers_known(rules) == 0


def test_partitions_count_the_dealers_they_hold(services, amqp_url, namespace):
    (rules,) = services("rules")
    at = now()
    publish_events(amqp_url, namespace, *(sale(f"D-{n}", at) for n in range(5)))
    wait_for(lambda: dealers_known(rules) == 5)
    partitions = httpx.get(f"{rules.url}/partitions").json()
    assert sum(p["dealers"] for p in partitions["owned"]) == 5


def test_a_dead_letter_the_broker_cannot_take_is_not_acked_and_arrives_once_it_can(services, amqp_url, namespace):
    """Nothing is acked before its effect is durable, a dead letter included: while the dead-letter
    queue is unbound (the dead letter unroutable), the bad message stays; bound again, it arrives."""
    (rules,) = services("rules")
    dead_letters = Topology(namespace).dead_letter_queue.name
    wait_for(lambda: declared(amqp_url, dead_letters))
    unbind(amqp_url, Topology(namespace).dead_letter.name, dead_letters, "")
    publish(amqp_url, Topology(namespace).events.name, event_key("sale", "D-1"), b"{not json")
    wait_for(lambda: "dead-lettering message" in rules.log())
    wait_for(lambda: "could not dead-letter" in rules.log())
    unbound_at = time.monotonic()
    bind(amqp_url, Topology(namespace).dead_letter.name, dead_letters, "", ours=False)
    wait_for(lambda: queue_depth(amqp_url, dead_letters) == 1, seconds=40)
    tries = rules.log_path.read_text().count("could not dead-letter")
    assert tries <= 2 + (time.monotonic() - unbound_at) / 1.0  # requeued after a pause, not in a hot loop
    assert drain(amqp_url, dead_letters)[0].body == b"{not json"
