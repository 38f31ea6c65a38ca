"""Bounded by design (#22), on the real stack: what an integrator is allowed to send cannot stall a
rules worker, grow a document past the database's limit or make a judgement cost more than what
changed; a dealer's bounds are refused at the door, naming the limit."""

from __future__ import annotations

import datetime as dt
import json
import time

import bson
import httpx
import pymongo
import pytest
from conftest import wait_for
from factories import event_base, now, over_budget, promotion_planned, visit_planned
from helpers import TEST_PARTITIONS, bind, drain
from histories import post

from services.common import limits
from services.common.judgement_time import CLOCK, DEALERS
from services.common.partitions import partition_of
from services.common.topology import Topology

# each event a source of history of its own, 128 characters of 4 bytes in UTF-8 (an ideograph of
# CJK extension B). Before #22 every source stayed in the partition's clock document: 36,000 of
# them made it 18 MB, past MongoDB's 16 MiB, and stalled the worker for good (that run: 106 s,
# docs/performance.md). Three times the number of histories kept shows the bound in 1/12 the time.
SOURCES = 3 * limits.MAX_HISTORIES
WIDE = "\U00020000"


def dealers_in_partition(partition: int, count: int) -> list[str]:
    found = []
    for n in range(100_000):
        if partition_of(f"H-{n}", TEST_PARTITIONS) == partition:
            found.append(f"H-{n}")
            if len(found) == count:
                return found
    raise AssertionError("not enough dealers")


def counted(mongo_url: str, database: str) -> int:
    """Events rules stored as counted, all dealers together (no `$in` of thousands of ids: the
    local server's cost grows with the square of the list)."""
    with pymongo.MongoClient(mongo_url) as client:
        return sum(doc["events"] for doc in client[database][DEALERS].find({}, {"events": 1}))


def stored_counts(mongo_url: str, database: str, dealer: str) -> dict:
    """What rules stored of the plans, outlets and promotions a dealer keeps (what ingest reads)."""
    with pymongo.MongoClient(mongo_url) as client:
        return (client[database][DEALERS].find_one({"_id": dealer}, {"counts": 1}) or {}).get("counts", {})


@pytest.mark.timeout(200)
def test_thousands_of_sources_of_history_do_not_stall_the_worker(services, amqp_url, mongo_url, namespace):
    """3,000 events, each from a source of its own (free text, 128 characters), for as many
    dealers of one partition: every one is counted, the partition's clock document keeps at most
    MAX_HISTORIES of them (it kept all, and grew without bound, before #22), and an
    ordinary alert posted after them leaves rules within seconds (notify is not what this is about:
    the alert signal is read off the exchange, as the stall was in rules)."""
    # held for an hour (the tests' default is a second): every history is followed at once
    ingest, rules = services("ingest", "rules", env={"DEALERWATCH_CLOCK_HOLD_SECONDS": "3600"})
    signals = f"{namespace}.test-subscriber"
    bind(amqp_url, Topology(namespace).alert_signals.name, signals)
    dealers = dealers_in_partition(0, SOURCES)  # each held by a history of its own, all at once
    start = now() - dt.timedelta(days=2)  # history: older than the clock's grace (none in the tests)
    posted = time.monotonic()
    for request in range(SOURCES // 1000):
        batch = []
        for n in range(1000):
            i = request * 1000 + n
            event = event_base("dealer.updated", dealers[i % len(dealers)], start + dt.timedelta(milliseconds=i))
            batch.append({**event, "tier": f"T{i % 7}", "source": f"{i:06d}".ljust(128, WIDE)})
        post(ingest, batch)
    wait_for(lambda: counted(mongo_url, namespace) == SOURCES, seconds=120, interval=1)
    judged = time.monotonic() - posted
    with pymongo.MongoClient(mongo_url) as client:
        clock = client[namespace][CLOCK].find_one({"_id": "clock:p0"})
    assert len(clock["history"]) <= limits.MAX_HISTORIES and len(bson.encode(clock)) < 1024 * 1024
    assert httpx.get(f"{rules.url}/clock").json()["histories"] <= limits.MAX_HISTORIES
    drain(amqp_url, signals, 100_000)  # what the history raised
    post(ingest, over_budget(dealers[0], now()))
    asked = time.monotonic()
    arrived = wait_for(lambda: [m for m in drain(amqp_url, signals) if b"promotion-over-budget" in m.body], seconds=15)
    assert json.loads(arrived[0].body)["dealer_id"] == dealers[0]
    after = time.monotonic() - asked
    print(f"\n{SOURCES:,} sources of history posted and judged in {judged:.1f} s; the alert after them in {after:.1f} s")


@pytest.mark.timeout(300)
def test_twenty_thousand_plans_for_one_dealer_are_judged_in_time_and_the_next_is_refused_at_the_door(
    services, mongo_url, namespace
):
    """Linear in the plans (quadratic before #22: 1,500 took 65 s in the core here), and plan
    20,001 refused at the door with the limit named; a retry of plans it has is accepted. (The
    dealer file's pages: tests/e2e/test_network.py.)"""
    big_requests = {"DEALERWATCH_INGEST_MAX_BATCH": "5000", "DEALERWATCH_INGEST_MAX_BODY_BYTES": str(32 * 1024 * 1024)}
    (ingest,) = services("ingest", env=big_requests)
    (rules,) = services("rules")
    at, day = now() - dt.timedelta(hours=1), dt.date.today() + dt.timedelta(days=30)
    plans = [visit_planned("D-P", at + dt.timedelta(milliseconds=n), f"PL-{n:05d}", day) for n in range(limits.MAX_PLANS)]
    posted = time.monotonic()
    for first in range(0, len(plans), 5000):
        post(ingest, plans[first : first + 5000])
    wait_for(
        lambda: stored_counts(mongo_url, namespace, "D-P").get("plans") == limits.MAX_PLANS, seconds=240
    )  # what the door reads
    print(f"\n{limits.MAX_PLANS:,} visit plans of one dealer posted, judged and stored in {time.monotonic() - posted:.1f} s")
    one_more = visit_planned("D-P", now(), "PL-one-more", day)
    refused = httpx.post(f"{ingest.url}/v1/events", json=[one_more], timeout=15)
    assert refused.status_code == 422
    (error,) = refused.json()["errors"]
    assert error["field"] == "plan_id" and f"the limit is {limits.MAX_PLANS:,}" in error["message"]
    again = httpx.post(f"{ingest.url}/v1/events", json=plans[:10], timeout=15)  # plans it keeps: nothing new
    assert again.status_code == 202


def test_a_promotion_lasts_at_most_366_days_at_the_door(services):
    (ingest,) = services("ingest")
    century = {**promotion_planned("D-C", now(), "P-century"), "starts_on": "2000-01-01", "ends_on": "2099-12-31"}
    response = httpx.post(f"{ingest.url}/v1/events", json=[century], timeout=15)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "ends_on" and "at most 366 days" in error["message"]
