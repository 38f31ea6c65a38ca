"""Where to send support next (#24): `GET /v1/support/priorities` for 100,000 dealers, the
ranking read from notify's kept scores (services/notify/support/priorities.py) on the
MongoDB-protocol server; baseline: the same top 20 sorted by the server in the same run.

Usage: python bench/priorities.py [--dealers 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services import devstack  # noqa: E402
from services.common.settings import Settings  # noqa: E402
from services.notify.store import AlertStore  # noqa: E402
from services.notify.support.priorities import Priorities, scored  # noqa: E402


async def _measure(url: str, dealers: int) -> dict[str, float]:
    store = AlertStore(Settings(mongo_url=url, namespace="bench-priorities"))
    priorities = Priorities(store)
    await priorities.ensure_indexes()
    rng = random.Random(24)
    for start in range(0, dealers, 5000):
        docs = []
        for n in range(start, min(start + 5000, dealers)):
            severities = rng.choices(["critical", "warning", "info"], k=rng.choice([0, 0, 1, 2]))
            doc = {
                "_id": f"D-{n:06d}",
                "region": f"R{n % 12}",
                "target_gap": rng.choice([0.0, rng.uniform(0, 50000)]),
                "baseline_gap": rng.choice([0.0, rng.uniform(0, 8000)]),
                "open": {f"A{n}x{i}": {"alert_id": f"A{n}x{i}", "rule_id": "r", "severity": s} for i, s in enumerate(severities)},
                "running": None,
                "running_id": None if n % 50 else f"S-{n}",
                "weights": {"critical": 1.0, "warning": 0.5, "info": 0.1},
                "changed_at": time.time(),
            }
            doc["score"] = scored(doc)[0]  # (for the baseline: the server's own sort)
            docs.append(doc)
        await priorities.collection.insert_many(docs)

    async def timed(call) -> float:
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            await call()
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)

    await asyncio.sleep(6.0)  # writes spread in time, as live: past the overlap re-read after each
    started = time.perf_counter()
    await priorities.rank(None, 20)  # a notify instance's first ranking reads every key
    first = time.perf_counter() - started
    for n in range(0, 100):  # then some dealers change between requests
        await priorities.collection.update_one(
            {"_id": f"D-{n:06d}"}, {"$set": {"target_gap": 1e9 + n, "changed_at": time.time()}}
        )
    ranked = await timed(lambda: priorities.rank(None, 20))
    by_region = await timed(lambda: priorities.rank("R3", 20))
    sorted_read = await timed(
        lambda: priorities.collection.find({"running_id": None}).sort([("score", -1), ("_id", 1)]).limit(20).to_list(None)
    )
    store.close()
    return {"ranked": ranked, "region": by_region, "first": first, "sorted": sorted_read, "dealers": float(dealers)}


def measure(dealers: int = 100_000) -> dict[str, float]:
    port = devstack.free_port() if hasattr(devstack, "free_port") else 27990
    server = devstack.start_mongo(port, ":memory:")
    try:
        return asyncio.run(_measure(f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false", dealers))
    finally:
        devstack.stop(server)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dealers", type=int, default=100_000)
    found = measure(parser.parse_args().dealers)
    print(
        f"support priorities, {found['dealers']:,.0f} dealers: ranking {found['ranked'] * 1000:,.1f} ms, "
        f"by region {found['region'] * 1000:,.1f} ms (goal: under 1 s); an instance's first {found['first']:,.1f} s; "
        f"the same top 20 sorted by the server {found['sorted'] * 1000:,.1f} ms"
    )


if __name__ == "__main__":
    main()
