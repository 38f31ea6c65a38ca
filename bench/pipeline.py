"""End-to-end benchmark: POST -> ingest -> rules -> notify -> stored alert, on the real broker.

Prints, from one run on one machine:
- baseline: raw aio-pika publish -> consume of persistent messages (confirms pipelined, acks),
  producer and consumer in two processes, on the same broker;
- dealerwatch: sustained events/s from the first POST until every event was judged and every
  expected alert stored, as a ratio of the baseline;
- latency from POST to stored alert (p50/p99), under that load and for single events when idle.

Usage: python bench/pipeline.py [--events 20000] [--batch 500] [--workers 1,2,3]
(--workers: one run per number of rules workers, sharing the 32 partitions; docs/scaling.md)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika
import httpx
import pymongo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import Service, _delete_topology, free_port, stack_env  # noqa: E402

from services import devstack  # noqa: E402

AMQP_URL = os.environ.get("DEALERWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ALERT_EVERY = 10  # one event in ten breaks a rule (a promotion spend over its budget)


# --- baseline: raw aio-pika ---


def _consume(queue: str, count: int, done) -> None:
    async def run():
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=200)
            declared = await channel.declare_queue(queue, durable=True)
            received = 0
            async with declared.iterator() as messages:
                async for message in messages:
                    await message.ack()
                    received += 1
                    if received == count:
                        break
        done.value = time.perf_counter()

    asyncio.run(run())


async def baseline(count: int) -> float:
    queue = f"bench-raw-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True)
        done = multiprocessing.Value("d", 0.0)
        consumer = multiprocessing.Process(target=_consume, args=(queue, count, done))
        consumer.start()
        await asyncio.sleep(1.0)
        body = (
            b'{"event_id":"x","type":"sale","dealer_id":"D-1","occurred_at":"2026-01-01T00:00:00Z","sku":"s","quantity":1,"amount":"1"}'
            * 2
        )
        start = time.perf_counter()
        for offset in range(0, count, 500):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue
                    )
                    for _ in range(min(500, count - offset))
                )
            )
        consumer.join()
        await channel.queue_delete(queue)
    return count / (done.value - start)


# --- dealerwatch ---


def events_for(batch: int, size: int, at: dt.datetime) -> list[dict]:
    events = []
    for n in range(size):
        dealer = f"D-{batch}-{n % 50}"
        stamp = (at + dt.timedelta(milliseconds=n)).isoformat()
        if n % ALERT_EVERY == 0:
            promotion = f"P-{batch}-{n}"
            events.append(
                {
                    "event_id": f"{batch}-{n}-plan",
                    "type": "promotion.planned",
                    "dealer_id": dealer,
                    "occurred_at": stamp,
                    "promotion_id": promotion,
                    "budget": "100",
                    "starts_on": "2026-01-01",
                    "ends_on": "2026-01-31",
                    "owner": "bench",
                }
            )
            # approved, so that exactly one alert (over budget) follows from each spend
            events.append(
                {
                    "event_id": f"{batch}-{n}-ok",
                    "type": "promotion.approved",
                    "dealer_id": dealer,
                    "occurred_at": stamp,
                    "promotion_id": promotion,
                    "approved_by": "bench",
                }
            )
            events.append(
                {
                    "event_id": f"{batch}-{n}-spend",
                    "type": "promotion.spend",
                    "dealer_id": dealer,
                    "occurred_at": stamp,
                    "promotion_id": promotion,
                    "amount": "150",
                }
            )
        else:
            events.append(
                {
                    "event_id": f"{batch}-{n}",
                    "type": "sale",
                    "dealer_id": dealer,
                    "occurred_at": stamp,
                    "sku": "JK-9100",
                    "quantity": 1,
                    "amount": "120.00",
                }
            )
            events.append(
                {
                    "event_id": f"{batch}-{n}-v",
                    "type": "visit",
                    "dealer_id": dealer,
                    "occurred_at": stamp,
                    "visitor_id": "rep",
                    "role": "rep",
                    "kind": "routine",
                }
            )
    return events


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(service: Service) -> float:
    for line in Path(f"/proc/{service.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_pipeline(total: int, batch_size: int, prefetch: int, workers: int = 1) -> dict:
    work = Path(tempfile.mkdtemp(prefix="dealerwatch-bench-"))
    mongo_port = free_port()
    mongo = devstack.start_mongo(mongo_port, str(work / "mongo"))
    mongo_url = f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true&retryWrites=false"
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    env = stack_env(
        AMQP_URL,
        mongo_url,
        namespace,
        log_level="WARNING",
        prefetch=str(prefetch),
        partitions=str(PARTITIONS),
        mongo_write_concern=os.environ.get("BENCH_W", "majority"),
    )
    if profile_dir := os.environ.get("BENCH_PROFILE_DIR"):  # docs/performance.md
        env["DEALERWATCH_PROFILE_DIR"] = profile_dir
    ports = {"ingest": "DEALERWATCH_INGEST_PORT", "notify": "DEALERWATCH_NOTIFY_PORT"}
    services = [Service(name, {**env, var: str(free_port())}, work).start() for name, var in ports.items()]
    rules = [Service("rules", {**env, "DEALERWATCH_RULES_PORT": str(free_port())}, work).start() for _ in range(workers)]
    services += rules
    ingest = services[0]
    wait_shared(rules)
    alerts = pymongo.MongoClient(mongo_url, tz_aware=True)[namespace]["alerts"]
    # the benchmark looks its alerts up by subject many times a second: without an index each
    # look is a scan that the (single-threaded, Python) local server makes everything wait for
    alerts.create_index("subject")
    try:
        now = dt.datetime.now(dt.UTC)
        batches = [events_for(b, batch_size // 2, now) for b in range(max(1, total // batch_size))]
        sent_at: dict[int, float] = {}
        expected = sum(1 for batch in batches for e in batch if e["type"] == "promotion.spend")
        with httpx.Client(timeout=60) as client:
            start = time.time()
            for number, batch in enumerate(batches):
                sent_at[number] = time.time()
                response = client.post(f"{ingest.url}/v1/events", json=batch)
                assert response.status_code == 202, response.text
            posted = time.time()
            while alerts.estimated_document_count() < expected:
                time.sleep(0.05)
                if time.time() - posted > 300:
                    raise TimeoutError("alerts did not arrive")
            finished = time.time()
        cpu = {"database": cpu_seconds(mongo.pid)}
        for service in services:
            cpu[service.name] = cpu.get(service.name, 0.0) + cpu_seconds(service.process.pid)
        latencies = [
            doc["created_at"].timestamp() - sent_at[int(doc["subject"].split("-")[1])]
            for doc in alerts.find({}, {"created_at": 1, "subject": 1})
        ]
        events = sum(len(b) for b in batches)
        wait_quiet(namespace, pymongo.MongoClient(mongo_url)[namespace])
        idle, posts = [], []
        with httpx.Client(timeout=30) as client:
            for n in range(100):
                batch = events_for(10_000 + n, 1, dt.datetime.now(dt.UTC))
                t0 = time.time()
                client.post(f"{ingest.url}/v1/events", json=batch)
                posts.append(time.time() - t0)
                while (doc := alerts.find_one({"subject": f"P-{10_000 + n}-0"})) is None:
                    time.sleep(0.01)  # (the latency is read from the alert's created_at, not from this loop)
                idle.append(doc["created_at"].timestamp() - t0)
        half = half_rate(ingest.url, alerts, (events / (finished - start)) / 2)
        return {
            "half_rate": half["rate"],
            "half_p50": statistics.median(half["latencies"]),
            "half_p99": percentile(half["latencies"], 0.99),
            "workers": workers,
            "rules_rss_mb": [round(rss_mb(r)) for r in rules],
            "cpu": {name: round(seconds, 1) for name, seconds in cpu.items()},
            "events": events,
            "alerts": expected,
            "seconds": finished - start,
            "rate": events / (finished - start),
            "post_rate": events / (posted - start),
            "p50": statistics.median(latencies),
            "p99": percentile(latencies, 0.99),
            "idle_p50": statistics.median(idle),
            "idle_p99": percentile(idle, 0.99),
            "post_p50": statistics.median(posts),
            "post_p99": percentile(posts, 0.99),
        }
    finally:
        for service in services:
            service.stop()
        devstack.stop(mongo)
        asyncio.run(_delete_topology(AMQP_URL, namespace, PARTITIONS))


PARTITIONS = 32


def wait_quiet(namespace: str, db, seconds: float = 300) -> None:
    """Until the burst's wake has passed: every queue of the stack empty (the dealer file, the
    signals) and every alert change published to the alerts exchange; then a single event
    meets an idle stack, as the idle latency goal means."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "messages"], capture_output=True, text=True)
        depth = sum(int(n) for name, n in (line.split() for line in listed.stdout.splitlines()) if name.startswith(namespace))
        counters = {doc["_id"]: doc["seq"] for doc in db["counters"].find()}
        if listed.returncode == 0 and not depth and counters.get("cursor:alerts-exchange", 0) >= counters.get("alert_changes", 0):
            time.sleep(2.0)
            return
        time.sleep(0.5)
    raise TimeoutError("the stack did not become idle")


def half_rate(ingest_url: str, alerts, rate: float, seconds: float = 15.0) -> dict:
    """POST -> stored alert while events arrive steadily at `rate` events/s (half what the
    stack sustained): requests of 21 events (one of them raising an alert) at even intervals."""
    per_request = len(events_for(0, 10, dt.datetime.now(dt.UTC)))
    interval = per_request / rate
    sent: dict[str, float] = {}
    with httpx.Client(timeout=30) as client:
        started = time.time()
        for n in range(max(5, int(seconds / interval))):
            time.sleep(max(0.0, started + n * interval - time.time()))
            batch = events_for(20_000 + n, 10, dt.datetime.now(dt.UTC))
            sent[f"P-{20_000 + n}-0"] = time.time()
            assert client.post(f"{ingest_url}/v1/events", json=batch).status_code == 202
        posted = time.time()
        while alerts.count_documents({"subject": {"$in": list(sent)}}) < len(sent):
            time.sleep(0.05)
            if time.time() - posted > 120:
                raise TimeoutError("alerts did not arrive")
    latencies = [doc["created_at"].timestamp() - sent[doc["subject"]] for doc in alerts.find({"subject": {"$in": list(sent)}})]
    return {"rate": len(sent) * per_request / (posted - started), "latencies": latencies}


def wait_shared(rules: list[Service], seconds: float = 60) -> None:
    """Until the workers own every partition once, each its even share."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        owned = [[p["partition"] for p in httpx.get(f"{r.url}/partitions").json()["owned"]] for r in rules]
        flat = [p for o in owned for p in o]
        if sorted(flat) == list(range(PARTITIONS)) and max(map(len, owned)) <= -(-PARTITIONS // len(rules)):
            return
        time.sleep(0.2)
    raise TimeoutError("the partitions were not shared out")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--prefetch", type=int, default=None, help="default: the service default")
    parser.add_argument("--workers", default=None, help="comma-separated numbers of rules workers, one run each")
    args = parser.parse_args()
    devstack.ensure_rabbitmq(AMQP_URL)
    raw = asyncio.run(baseline(args.events))
    from services.common.settings import Settings

    prefetch = args.prefetch or Settings().prefetch
    if args.workers:
        print(f"baseline  raw aio-pika publish->consume (persistent, confirms): {raw:8.0f} msg/s")
        for workers in map(int, args.workers.split(",")):
            result = run_pipeline(args.events, args.batch, prefetch, workers)
            print(
                f"workers={workers}  {result['rate']:6.0f} events/s end to end (ratio {result['rate'] / raw:.2f}), "
                f"p50 {result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms under load; "
                f"rules RSS per worker {result['rules_rss_mb']} MB; CPU seconds until the last alert {result['cpu']}"
            )
        return
    result = run_pipeline(args.events, args.batch, prefetch)
    print(f"baseline  raw aio-pika publish->consume (persistent, confirms): {raw:8.0f} msg/s")
    print(
        f"pipeline  {result['events']} events, {result['alerts']} alerts in {result['seconds']:.1f} s: "
        f"{result['rate']:8.0f} events/s end to end (POSTs accepted at {result['post_rate']:.0f}/s)"
    )
    print(f"ratio     dealerwatch / raw aio-pika = {result['rate'] / raw:.2f}")
    print(f"latency   POST -> stored alert under load: p50 {result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms")
    print(
        f"latency   POST -> stored alert, one event at a time: p50 {result['idle_p50'] * 1000:.0f} ms, "
        f"p99 {result['idle_p99'] * 1000:.0f} ms (the POST itself: p50 {result['post_p50'] * 1000:.0f} ms, "
        f"p99 {result['post_p99'] * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
