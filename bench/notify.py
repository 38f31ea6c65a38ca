"""What notify costs the database: operations per stored alert (signals published as rules
publishes them, each opening a new alert), and per second when idle. Read from the server's
opcounters, with notify the only client.

Usage: python bench/notify.py [--alerts 2000] [--idle-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika
import pymongo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import Service, _delete_topology, free_port, stack_env  # noqa: E402
from factories import signal  # noqa: E402

from services import devstack  # noqa: E402
from services.common.topology import Topology  # noqa: E402

PERSISTENT = aio_pika.DeliveryMode.PERSISTENT
AMQP_URL = os.environ.get("DEALERWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def operations(client: pymongo.MongoClient) -> int:
    counters = client.admin.command("serverStatus")["opcounters"]
    return sum(counters[name] for name in ("insert", "query", "update", "delete", "getmore", "command"))


async def publish(exchange_name: str, bodies: list[bytes]) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(exchange_name)
        for offset in range(0, len(bodies), 500):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), "warning.sales-drop.x"
                    )
                    for body in bodies[offset : offset + 500]
                )
            )


def measure(alerts: int, idle_seconds: float) -> dict[str, float]:
    """{"per_alert": operations per stored alert, "idle": operations per idle second, "seconds": storing}."""
    work = Path(tempfile.mkdtemp(prefix="dealerwatch-bench-"))
    port = free_port()
    server = devstack.start_mongo(port, ":memory:")
    url = f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    notify = Service(
        "notify", stack_env(AMQP_URL, url, namespace, log_level="WARNING", notify_port=str(free_port())), work
    ).start()
    try:
        mongo = pymongo.MongoClient(url)
        stored = mongo[namespace]["alerts"]
        time.sleep(8.0)  # settled: indexes made, the change feed quiet
        before, started = operations(mongo), time.perf_counter()
        asyncio.run(publish(Topology(namespace).alert_signals.name, [signal(f"bench-{n}", 1) for n in range(alerts)]))
        while stored.count_documents({}) < alerts:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        time.sleep(2.0)  # its change-log entries published (the alerts exchange), the feed caught up
        per_alert = (operations(mongo) - before) / alerts
        time.sleep(8.0)  # quiet again: the feed waits on a change stream
        before = operations(mongo)
        time.sleep(idle_seconds)
        idle = (operations(mongo) - before - 1) / idle_seconds  # (less the opcounters read itself)
        return {"per_alert": per_alert, "idle": idle, "seconds": seconds}
    finally:
        notify.stop()
        devstack.stop(server)
        asyncio.run(_delete_topology(AMQP_URL, namespace))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    devstack.ensure_rabbitmq(AMQP_URL)
    result = measure(args.alerts, args.idle_seconds)
    print(
        f"notify    {args.alerts} new alerts stored in {result['seconds']:.1f} s: {args.alerts / result['seconds']:.0f} alerts/s"
    )
    print(f"notify    {result['per_alert']:.2f} database operations per stored alert (measured, all of them)")
    print(f"notify    {result['idle']:.2f} database operations per idle second (goal <= 1)")


if __name__ == "__main__":
    main()
