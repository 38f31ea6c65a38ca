"""`make bench`: the speed goals of issues #14, #22 and #26 as one table, each against a baseline measured in
the same run on the same machine (raw aio-pika on the same broker, bare durable-rules `post` of
the same compiled rules). Latency goals are checked here, never by a timed test.

Usage: python bench/table.py [--events 20000] [--rules-events 60000] [--dealers 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import backtest_jobs  # noqa: E402
import notify as notify_bench  # noqa: E402
import pipeline  # noqa: E402
import priorities as priorities_bench  # noqa: E402
import rules as rules_bench  # noqa: E402
import subjects as subjects_bench  # noqa: E402
import year  # noqa: E402

from services import devstack  # noqa: E402
from services.common.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000, help="the end-to-end burst")
    parser.add_argument("--rules-events", type=int, default=60_000)
    parser.add_argument("--dealers", type=int, default=100_000, help="for state per dealer")
    args = parser.parse_args()
    devstack.ensure_rabbitmq(pipeline.AMQP_URL)
    print("measuring (about 25 minutes): raw aio-pika, the stack under a burst, rules, notify ...", flush=True)
    raw = asyncio.run(pipeline.baseline(args.events))
    stack = pipeline.run_pipeline(args.events, 500, Settings().prefetch)
    core = rules_bench.measure(args.rules_events, args.dealers)
    ops = notify_bench.measure(2000, 20.0)
    items = subjects_bench.measure()
    ranking = priorities_bench.measure(args.dealers)
    spread = backtest_jobs.measure(dealers=800)  # ~90,000 events (the default turns --jobs on from 50,000)
    a_year = year.measure(dealers=YEAR_DEALERS)
    bare = core["bare"]
    ms = {name: f"{stack[name] * 1000:,.0f}" for name in ("idle_p50", "idle_p99", "half_p50", "half_p99")}
    rows = [
        (
            "end-to-end events/s, 20k burst",
            f"raw aio-pika {raw:,.0f} msg/s",
            f"{stack['rate']:,.0f} events/s",
            f"{stack['rate'] / raw:.2f}",
            ">= 1.0",
        ),
        ("POST -> stored alert, one at a time, p99", "", f"{ms['idle_p99']} ms (p50 {ms['idle_p50']})", "", "<= 50 ms"),
        (
            f"POST -> stored alert at half rate ({stack['half_rate']:,.0f}/s), p99",
            "",
            f"{ms['half_p99']} ms (p50 {ms['half_p50']})",
            "",
            "<= 250 ms",
        ),
        (
            "rules events per CPU-second",
            f"bare post {bare:,.0f}/CPU-s",
            f"{core['core']:,.0f}",
            f"{core['core'] / bare:.2f}",
            ">= 0.3",
        ),
        (
            "rules: what a judgement keeps for the next (#26)",
            f"keeping nothing {core['exhaustive']:,.0f}/CPU-s",
            f"{core['core']:,.0f}",
            f"{core['core'] / core['exhaustive']:.2f}",
            "reported",
        ),
        (
            "backtest events/s (whole command)",
            f"bare post {bare:,.0f}/CPU-s",
            f"{core['backtest']:,.0f}",
            f"{core['backtest'] / bare:.2f}",
            ">= 0.5",
        ),
        (
            f"backtest --jobs 2, {spread['events']:,} events",
            f"--jobs 1 {spread['one']:.1f} s",
            f"{spread['two']:.1f} s",
            f"{spread['speedup']:.2f}",
            ">= 1.8 (speed-up)",
        ),
        (
            f"backtest of a year of 2,000 dealers (~{a_year['events'] * 2000 // YEAR_DEALERS:,} events), --jobs {a_year['jobs']}",
            f"{a_year['dealers']:,} dealers measured: {a_year['seconds'] / 60:.1f} min",
            f"{a_year['seconds'] * 2000 / YEAR_DEALERS / 60:.1f} min",
            "",
            "<= 10 min",
        ),
        (f"state per dealer at {args.dealers:,} dealers", "", f"{core['memory_kb']:.2f} KB", "", "<= 2 KB"),
        *(
            (
                f"{kind}s of one dealer: CPU per item at 10,000",
                f"at 100: {costs[100] * 1e6:,.0f} µs (1,000: {costs[1_000] * 1e6:,.0f})",
                f"{costs[10_000] * 1e6:,.0f} µs",
                f"{costs[10_000] / costs[100]:.2f}",
                "<= 1.5 (linear)",
            )
            for kind, costs in items.items()
        ),
        (
            f"support priorities at {args.dealers:,} dealers, top 20",
            f"sorted by the server {ranking['sorted'] * 1000:,.0f} ms",
            f"{ranking['ranked'] * 1000:,.0f} ms (a region {ranking['region'] * 1000:,.0f})",
            f"{ranking['ranked'] / ranking['sorted']:.3f}",
            "< 1 s",
        ),
        ("notify DB operations per stored alert", "", f"{ops['per_alert']:.2f}", "", "reported"),
        ("notify DB operations per idle second", "", f"{ops['idle']:.2f}", "", "<= 1"),
    ]
    widths = [max(len(str(row[i])) for row in rows + [HEADER]) for i in range(len(HEADER))]
    for row in [HEADER, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    cpu = stack["cpu"]
    total = sum(cpu.values())
    print(
        f"\nCPU seconds of the burst until its last alert: {cpu} - the MongoDB-compatible server "
        f"{cpu['database'] / total:.0%} of all; under load p50 {stack['p50'] * 1000:,.0f} ms, "
        f"p99 {stack['p99'] * 1000:,.0f} ms; rules judged {core['judgements'] / core['events']:.1f} times per event"
    )


HEADER = ("measure", "baseline (this run)", "dealerwatch", "ratio", "goal")
# a year of 500 of the 2,000 dealers (1.7 M events, ~6 minutes): dealers are independent and each
# process judges them one after another, so 2,000 take four times as long (bench/year.py: all of them)
YEAR_DEALERS = 500

if __name__ == "__main__":
    main()
