"""Rules workers sharing the dealers by partition, as real processes on the real broker: one
killed, one frozen and woken after its partitions moved, workers joining, all restarted, while a
two weeks of 200 dealers' events are posted. Every event counted once, no alert twice, the alerts a backtest
of the same file gives."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections import Counter

import httpx
import pymongo
import pytest
from conftest import wait_for
from helpers import queue_depth
from histories import alert_key, backtest_opened, chunks, post, stored_alerts, write

from services.common.topology import Topology

PARTITIONS = 12
# holds longer than the longest pause below (a handover, a freeze): the history is one backfill
ENV = {"DEALERWATCH_PARTITIONS": str(PARTITIONS), "DEALERWATCH_CLOCK_HOLD_SECONDS": "45"}


def _delete_extra_queues(amqp_url: str, namespace: str) -> None:
    """The namespace fixture deletes the test stack's usual partitions; these are more."""
    import asyncio

    import aio_pika

    async def delete() -> None:
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            for queue in Topology(namespace, PARTITIONS).rules_queues:
                await channel.queue_delete(queue.name)

    asyncio.run(delete())


def two_weeks(dealers: int) -> list[dict]:
    """Two weeks of daily sales of `dealers` dealers, in time order: every tenth goes quiet after
    four days and every seventh overspends a promotion (alerts at events and at deadlines)."""
    from factories import over_budget, sale, visit

    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    events = []
    for d in range(dealers):
        dealer = f"W-{d}"
        for day in range(14 if d % 10 else 4):
            at = end - dt.timedelta(days=14 - day, minutes=d)
            events.append(sale(dealer, at, 100 + d % 50))
        if d % 3 == 0:
            events.append(visit(dealer, end - dt.timedelta(days=10, minutes=d)))
        if d % 7 == 0:
            events += over_budget(dealer, end - dt.timedelta(days=6, minutes=d), f"P-{d}")
    return sorted(events, key=lambda e: e["occurred_at"])


def settle_every_partition(ingest, notify, seconds: float) -> None:
    """A marker alert through every partition: each comes after everything posted before it to
    its partition (one marker dealer per partition, by the documented hash)."""
    import hashlib
    import uuid

    from factories import now, over_budget

    markers = {}
    for n in range(1000):
        dealer = f"marker-{n}"
        markers.setdefault(int.from_bytes(hashlib.blake2b(dealer.encode(), digest_size=8).digest(), "big") % PARTITIONS, dealer)
        if len(markers) == PARTITIONS:
            break
    promotion = f"M-{uuid.uuid4().hex[:6]}"
    for dealer in markers.values():
        post(ingest, over_budget(dealer, now(), promotion))

    def arrived() -> bool:
        items = httpx.get(f"{notify.url}/v1/alerts", params={"rule_id": "promotion-over-budget", "limit": 500}).json()["items"]
        return {a["dealer_id"] for a in items if a["subject"] == promotion} >= set(markers.values())

    wait_for(arrived, seconds, interval=1)


def assert_as_backtested(workers, ingest, notify, path, events, mongo_url, namespace, amqp_url) -> set:
    """Once no dealer is held: the same alerts as a backtest, none twice; every event counted
    once; nothing dead-lettered. Returns the alerts."""
    wait_for(lambda: sum(httpx.get(f"{w.url}/clock").json()["dealers_held"] for w in workers) == 0, 120)
    before = dt.datetime.now(dt.UTC)
    settle_every_partition(ingest, notify, 300)
    alerts = [a for a in stored_alerts(notify) if not a["dealer_id"].startswith("marker")]
    keys = [alert_key(a) for a in alerts]
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
    live = set(keys)
    lower, upper = backtest_opened(path, before), backtest_opened(path, dt.datetime.now(dt.UTC))
    assert lower <= live, f"missing: {sorted(lower - live)[:5]}"
    assert live <= upper, f"not raised by the backtest: {sorted(live - upper)[:5]}"
    with pymongo.MongoClient(mongo_url) as client:
        counted = {d["_id"]: d["events"] for d in client[namespace]["rules_dealers"].find({}, {"events": 1})}
    posted = Counter(e["dealer_id"] for e in events)
    assert {d: counted.get(d) for d in posted} == dict(posted)  # every accepted event, once
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 0
    return live


def owned(worker) -> list[int]:
    try:
        body = httpx.get(f"{worker.url}/partitions", timeout=2).json()
    except httpx.HTTPError:
        return []
    return [item["partition"] for item in body["owned"]]


def ownership(workers) -> Counter:
    """partition -> how many of these workers say they own it."""
    return Counter(p for worker in workers for p in owned(worker))


def all_owned_once(workers) -> bool:
    counts = ownership(workers)
    return set(counts) == set(range(PARTITIONS)) and max(counts.values()) == 1


def seconds_until_all_owned(workers, limit: float = 30) -> float:
    started = time.monotonic()
    wait_for(lambda: all_owned_once(workers), limit, interval=0.2)
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.timeout(900)  # five stages, holds of 45 s at the end
def test_workers_share_fail_over_and_rebalance_without_losing_or_repeating(services, tmp_path, mongo_url, amqp_url, namespace):
    events = two_weeks(dealers=200)
    path = write(tmp_path / "history.ndjson", events)
    parts = chunks(events, len(events) // 5 + 1)
    ingest, notify = services("ingest", "notify", env=ENV)
    workers = services("rules", "rules", "rules", env=ENV)
    # an even share each, once settled
    wait_for(lambda: all_owned_once(workers) and max(len(owned(w)) for w in workers) <= PARTITIONS // 3 + 1, 30, 0.2)

    # 1. kill -9 of one worker: its partitions are owned again within 15 s
    for batch in chunks(parts[0], 500):
        post(ingest, batch)
    killed, *alive = workers
    killed.stop(kill=True)
    handover = seconds_until_all_owned(alive)
    assert handover <= 15, handover

    # 2. a frozen worker: its partitions move on; woken up, it writes nothing stale
    for batch in chunks(parts[1], 500):
        post(ingest, batch)
    frozen, other = alive
    os.kill(frozen.process.pid, signal.SIGSTOP)
    try:
        frozen_handover = seconds_until_all_owned([other], 40)
        for batch in chunks(parts[2], 500):
            post(ingest, batch)
    finally:
        os.kill(frozen.process.pid, signal.SIGCONT)
    wait_for(lambda: "dropped" in frozen.log(), 30)  # it learnt that it lost them
    assert frozen.process.poll() is None  # and lives on, to take a share again

    # 3. workers join: the partitions spread again, none is owned twice
    joined = services("rules", "rules", env=ENV)
    workers = [frozen, other, *joined]
    wait_for(lambda: all_owned_once(workers) and max(len(owned(w)) for w in workers) <= PARTITIONS // 4 + 1, 40, 0.2)
    for batch in chunks(parts[3], 500):
        post(ingest, batch)

    # 4. every worker restarted: states and deadlines come back from the database
    for worker in workers:
        worker.stop()
    workers = services("rules", "rules", "rules", env=ENV)
    seconds_until_all_owned(workers)
    for batch in chunks(parts[4], 500):
        post(ingest, batch)

    live = assert_as_backtested(workers, ingest, notify, path, events, mongo_url, namespace, amqp_url)
    _delete_extra_queues(amqp_url, namespace)
    print(f"\nhandover after kill -9: {handover:.1f}s; after SIGSTOP: {frozen_handover:.1f}s; {len(live)} alerts")
