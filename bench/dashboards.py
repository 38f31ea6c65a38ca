"""What open dashboards cost the database: notify alone, with 0 and then N idle live streams
(`GET /v1/alerts/stream`), database operations per second read from the server's opcounters.

Usage: python bench/dashboards.py [--dashboards 25] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import pymongo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from conftest import Service, _delete_topology, free_port, stack_env  # noqa: E402
from notify import operations  # noqa: E402

from services import devstack  # noqa: E402

AMQP_URL = os.environ.get("DEALERWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def measure(url: str, mongo: pymongo.MongoClient, dashboards: int, seconds: float) -> float:
    async def hold(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", f"{url}/v1/alerts/stream") as response:
            async for _ in response.aiter_lines():
                pass

    async with httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=dashboards + 10)) as client:
        streams = [asyncio.create_task(hold(client)) for _ in range(dashboards)]
        await asyncio.sleep(2.0)  # connected and settled
        before = operations(mongo)
        await asyncio.sleep(seconds)
        rate = (operations(mongo) - before) / seconds
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dashboards", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dealerwatch-bench-"))
    mongo_port = free_port()
    server = devstack.start_mongo(mongo_port, ":memory:")
    mongo_url = f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true&retryWrites=false"
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    env = stack_env(AMQP_URL, mongo_url, namespace, log_level="WARNING", notify_port=str(free_port()))
    notify = Service("notify", env, work).start()
    try:
        mongo = pymongo.MongoClient(mongo_url)
        idle = asyncio.run(measure(notify.url, mongo, 0, args.seconds))
        watched = asyncio.run(measure(notify.url, mongo, args.dashboards, args.seconds))
        print(f"notify idle, no dashboard:          {idle:6.1f} database operations/s")
        print(f"notify idle, {args.dashboards:3d} live dashboards:   {watched:6.1f} database operations/s")
        print(f"cost of a dashboard:                {(watched - idle) / max(args.dashboards, 1):6.2f} operations/s each")
    finally:
        notify.stop()
        devstack.stop(server)
        asyncio.run(_delete_topology(AMQP_URL, namespace))


if __name__ == "__main__":
    main()
