"""Awkward but valid input never stalls or poisons the pipeline (real broker, real processes):
long Chinese ids, numbers durable-rules refuses in the form json.dumps writes them, a value
the database cannot store, a signal the broker cannot route."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from conftest import wait_for
from factories import event_base, now, over_budget, promotion_approved, sale, visit
from helpers import bind, drain, publish_events, queue_depth, rules_depth, unbind
from histories import post

from services.common.topology import Topology

LONG = "经销商" * 26  # 78 characters, 234 bytes: the alert's routing key is over 255 bytes
LONGEST = "销" * 128  # the longest id the contract allows: 384 bytes


def alerts(notify, **params) -> list[dict]:
    return httpx.get(f"{notify.url}/v1/alerts", params={"limit": 500, **params}).json()["items"]


def test_long_chinese_dealer_ids_go_through_and_stall_nobody(services, amqp_url, namespace):
    ingest, rules, notify = services("ingest", "rules", "notify")
    subscriber = f"{namespace}.test-subscriber"
    bind(amqp_url, Topology(namespace).alerts.name, subscriber)  # another system on the alerts exchange
    at = now()
    for dealer in (LONG, LONGEST, "D-1"):
        events = over_budget(dealer, at, "P-1")
        post(ingest, [{**e, "event_id": f"{dealer[:40]}-{n}"} for n, e in enumerate(events)])
    stored = wait_for(lambda: len(found := alerts(notify)) == 3 and found)
    assert {a["dealer_id"] for a in stored} == {LONG, LONGEST, "D-1"}
    # one `opened` change per alert reaches the exchange
    wait_for(lambda: queue_depth(amqp_url, subscriber) >= 3)
    published = [json.loads(m.body) for m in drain(amqp_url, subscriber)]
    assert {p["alert"]["dealer_id"] for p in published} == {LONG, LONGEST, "D-1"}
    assert httpx.get(f"{rules.url}/readyz").status_code == 200
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 0


def promotion_with_ratio(dealer: str, at: dt.datetime) -> list[dict]:
    """A promotion whose (P - S) / X is 0.03 / 1000 = 3e-05: json.dumps writes `3e-05`."""
    day = dt.timedelta(days=1)
    start, end = (at - 3 * day).date(), (at - 2 * day).date()
    return [
        {
            **event_base("promotion.planned", dealer, at - 5 * day),
            "promotion_id": "P-R",
            "budget": "1000",
            "starts_on": start.isoformat(),
            "ends_on": end.isoformat(),
            "owner": "Li Na",
        },
        promotion_approved(dealer, at - 5 * day, "P-R"),
        {**event_base("promotion.spend", dealer, at - 3 * day), "promotion_id": "P-R", "amount": "1000"},
        sale(dealer, at - dt.timedelta(days=2, hours=12), "0.03"),
        {**event_base("promotion.ended", dealer, at - dt.timedelta(hours=1)), "promotion_id": "P-R"},
    ]


def test_tiny_and_huge_numbers_are_judged_kept_and_survive_a_restart(services, amqp_url, namespace):
    ingest, rules, notify = services("ingest", "rules", "notify")
    at = now()
    post(ingest, promotion_with_ratio("D-R", at))
    post(ingest, [sale("D-T", at - dt.timedelta(minutes=1), "0.00001"), sale("D-H", at, "1000000000000")])  # the largest
    ineffective = wait_for(lambda: alerts(notify, rule_id="promotion-ineffective"))[0]
    assert ineffective["dealer_id"] == "D-R" and ineffective["details"]["measures"]["promotion_roi"] == pytest.approx(3e-05)
    # the evaluation is a message of its own beside the alert's signal: it may be stored a batch later
    evaluations_url = f"{notify.url}/v1/promotion-evaluations"
    (evaluation,) = wait_for(lambda: httpx.get(evaluations_url, params={"dealer_id": "D-R"}).json()["items"])
    assert evaluation["ratio"] == pytest.approx(3e-05) and evaluation["verdict"] == "ineffective"

    def counted() -> dict:
        return {d: httpx.get(f"{rules.url}/v1/dealers/{d}").json().get("events_counted") for d in ("D-R", "D-T", "D-H")}

    wait_for(lambda: counted() == {"D-R": 5, "D-T": 1, "D-H": 1})
    assert httpx.get(f"{rules.url}/v1/dealers/D-T").json()["measures"]["sales_mtd"] == 1e-05
    rules.stop(kill=True)  # what was counted was stored: nothing is lost on a restart
    (rules,) = services("rules")
    assert counted() == {"D-R": 5, "D-T": 1, "D-H": 1}
    assert httpx.get(f"{rules.url}/v1/set-aside").json()["items"] == []
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 0


def test_the_clock_keeps_every_dealer_going(services):
    """A dealer whose values once stopped the clock loop (a tick that raised) comes first; the
    dealers after it still get their time-based alerts."""
    ingest, rules, notify = services("ingest", "rules", "notify")
    at = now()
    post(
        ingest,
        [
            sale("D-X", at - dt.timedelta(days=40), "0.00001"),
            visit("D-X", at - dt.timedelta(days=40)),
            sale("D-Y", at - dt.timedelta(days=25)),
            visit("D-Y", at - dt.timedelta(days=1)),
        ],
    )
    inactive = wait_for(lambda: {a["dealer_id"] for a in alerts(notify, rule_id="dealer-inactive")} == {"D-X", "D-Y"})
    assert inactive
    assert httpx.get(f"{rules.url}/v1/set-aside").json()["items"] == []
    assert httpx.get(f"{rules.url}/readyz").status_code == 200


def test_a_message_no_consumer_can_take_is_set_aside_and_the_others_are_kept(services, amqp_url, namespace):
    """Published by another system past ingest's door (ingest refuses it: 422): each consumer
    dead-letters it with its reason, and the events around it are kept."""
    ingest, rules, notify = services("ingest", "rules", "notify")
    at = now()
    huge = {
        **event_base("target.set", "D-1", at),
        "period": at.strftime("%Y-%m"),
        "sales_target": "100",
        "active_outlets_target": 2**63,
    }  # not a 64-bit integer
    refused = httpx.post(f"{ingest.url}/v1/events", json=[huge])
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "active_outlets_target"
    publish_events(amqp_url, namespace, visit("D-2", at), huge, visit("D-3", at))
    for dealer in ("D-2", "D-3"):
        wait_for(lambda dealer=dealer: httpx.get(f"{notify.url}/v1/dealers/{dealer}").json().get("visits"), 20)
        wait_for(lambda dealer=dealer: httpx.get(f"{rules.url}/v1/dealers/{dealer}").status_code == 200)
    wait_for(lambda: queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 3)
    dead = drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    assert sorted(m.headers["x-dealerwatch-stage"] for m in dead) == ["notify", "notify.archive", "rules"]
    assert all(
        m.headers["x-dealerwatch-error"].startswith("invalid event") and json.loads(m.body)["event_id"] == huge["event_id"]
        for m in dead
    )
    assert httpx.get(f"{notify.url}/readyz").status_code == 200 and httpx.get(f"{rules.url}/readyz").status_code == 200


async def test_the_dealer_file_and_the_archive_write_a_batch_without_the_document_the_database_refuses(mongo_url, namespace):
    """No valid event makes such a document any more; the split stays, for what nobody foresaw
    (the dealer file's and the archive's writes: mongo.insert_new)."""
    import motor.motor_asyncio

    from services.common.mongo import insert_new

    client = motor.motor_asyncio.AsyncIOMotorClient(mongo_url)
    timeline = client[namespace]["dealer_timeline"]
    refused = await insert_new(
        timeline, [{"_id": "a", "n": 1}, {"_id": "b", "n": 2**64}, {"_id": "c", "n": 3}, {"_id": "a", "n": 1}]
    )
    assert list(refused) == [1] and refused[1].startswith("OverflowError")
    assert sorted(d["_id"] for d in await timeline.find({}).to_list(None)) == ["a", "c"]  # a twice: a retry
    client.close()


def test_a_signal_the_broker_cannot_route_is_dead_lettered_after_its_attempts(services, amqp_url, namespace):
    ingest, rules = services("ingest", "rules", env={"DEALERWATCH_MAX_ATTEMPTS": "3"})
    unbind(amqp_url, Topology(namespace).alert_signals.name, Topology(namespace).notify_queue.name)  # nothing takes signals
    at = now()
    post(ingest, over_budget("D-1", at, "P-1"))
    wait_for(lambda: queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) >= 2, 30)
    dead = [m for m in drain(amqp_url, Topology(namespace).dead_letter_queue.name) if "rule_id" in json.loads(m.body)]
    signal = json.loads(dead[0].body)  # (the dealer's standing went there too)
    assert signal["rule_id"] == "promotion-over-budget" and signal["dealer_id"] == "D-1"
    assert dead[0].headers["x-dealerwatch-error"].startswith("not published after 3 tries")
    # tried three times: dead-lettered at the third (each flush holding a standing fails too)
    assert rules.log_path.read_text().count("flush failed (PublishError") >= 2
    assert dead[0].headers["x-dealerwatch-stage"] == "rules.output"
    # the events were stored and acked: the flush goes on for everything else
    wait_for(lambda: rules_depth(amqp_url, namespace) == 0)
    post(ingest, [sale("D-2", at)])
    wait_for(lambda: httpx.get(f"{rules.url}/v1/dealers/D-2").json().get("events_counted") == 1)
    wait_for(lambda: httpx.get(f"{rules.url}/readyz").status_code == 200)


async def test_a_dealer_whose_state_cannot_be_stored_is_set_aside_and_its_events_dead_lettered(
    service_env, amqp_url, mongo_url, namespace, monkeypatch
):
    """The rules flush finds the one dealer at fault (in process, to give it a state that cannot
    be stored: no contract-valid event does any more), on the real broker and database."""
    import asyncio

    import motor.motor_asyncio

    from services.common.settings import Settings
    from services.rules import policy
    from services.rules import service as rules_service

    real_encode = rules_service.encode

    def encode(state, *where):
        if state.dealer_id == "BAD":
            raise ValueError("its state cannot be stored: OverflowError: MongoDB can only handle up to 8-byte ints")
        return real_encode(state, *where)

    monkeypatch.setattr(rules_service, "encode", encode)
    settings = Settings(
        **{k.removeprefix("DEALERWATCH_").lower(): v for k, v in service_env.items() if k.startswith("DEALERWATCH_")}
    )
    live = rules_service.RulesService(settings, policy.load(settings.policy_file))
    await live.start()
    try:
        at = now()
        await asyncio.to_thread(publish_events, amqp_url, namespace, sale("GOOD", at), sale("BAD", at), sale("GOOD", at))
        for _ in range(200):
            if "BAD" in {item.dealer_id for item in live.set_aside()} and await asyncio.to_thread(
                queue_depth, amqp_url, Topology(namespace).dead_letter_queue.name
            ):
                break
            await asyncio.sleep(0.05)
        (dead,) = await asyncio.to_thread(drain, amqp_url, Topology(namespace).dead_letter_queue.name)
        assert json.loads(dead.body)["dealer_id"] == "BAD"
        assert dead.headers["x-dealerwatch-error"].startswith("dealer BAD is set aside: its state cannot be stored")
        client = motor.motor_asyncio.AsyncIOMotorClient(mongo_url)
        good = await client[namespace]["rules_dealers"].find_one({"_id": "GOOD"})
        assert good["events"] == 2 and await client[namespace]["rules_dealers"].find_one({"_id": "BAD"}) is None
        client.close()
        assert "BAD" not in live.core.states  # back to what was stored: nothing
        assert await asyncio.to_thread(rules_depth, amqp_url, namespace) == 0
    finally:
        await live.stop()
