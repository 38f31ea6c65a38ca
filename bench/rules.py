"""Rules benchmark: prints, from one run on one machine,
- the rules core's events per CPU-second (parse, dedup, state, measures, engine, clock) against
  bare durable-rules `post` of the same facts to the same compiled rules (goal >= 0.3);
- backtest speed in events/s (the whole command, file to alerts), against the same bare rate;
- memory per dealer of state for the default policy at 100,000 dealers (goal <= 2 KB).

Usage: python bench/rules.py [--events 60000] [--dealers 100000]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gc
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from durable import engine as durable_engine  # noqa: E402  (the baseline only)

from services.common.events import parse_event  # noqa: E402
from services.rules import policy as policies  # noqa: E402
from services.rules.backtest import backtest  # noqa: E402
from services.rules.core import RulesCore  # noqa: E402
from services.rules.judge import Judge  # noqa: E402
from services.rules.store import from_doc, to_doc  # noqa: E402

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def dealer_history(dealer: str, days: int, rng: random.Random) -> list[dict]:
    """A registered dealer (as in a real network: an unregistered one has an alert open at every
    judgement), about one sale a day to one of 6 outlets, a visit every 10 days, a monthly target."""
    events = [
        {
            "event_id": f"{dealer}-r",
            "type": "dealer.registered",
            "dealer_id": dealer,
            "occurred_at": START.isoformat(),
            "name": f"{dealer} Sewing Machines",
            "contact_name": "Wang",
        }
    ]
    for day in range(days):
        at = START + dt.timedelta(days=day, hours=rng.randint(8, 18), minutes=rng.randint(0, 59))
        events.append(
            {
                "event_id": f"{dealer}-s{day}",
                "type": "sale",
                "dealer_id": dealer,
                "occurred_at": at.isoformat(),
                "sku": "JK-9100",
                "quantity": 1,
                "amount": str(rng.randint(100, 400)),
                "outlet_id": f"O-{rng.randint(1, 6)}",
            }
        )
        if day % 10 == 0:
            events.append(
                {
                    "event_id": f"{dealer}-v{day}",
                    "type": "visit",
                    "dealer_id": dealer,
                    "occurred_at": at.isoformat(),
                    "visitor_id": "rep-1",
                    "role": "rep",
                    "kind": "routine",
                }
            )
        if at.day == 1 and at.hour < 12:
            events.append(
                {
                    "event_id": f"{dealer}-t{day}",
                    "type": "target.set",
                    "dealer_id": dealer,
                    "occurred_at": at.isoformat(),
                    "period": at.strftime("%Y-%m"),
                    "sales_target": "8000",
                    "active_outlets_target": 4,
                }
            )
    return events


def interleaved(dealers: int, days: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    events = [e for d in range(dealers) for e in dealer_history(f"D-{d}", days, rng)]
    events.sort(key=lambda e: e["occurred_at"])
    return [json.dumps(e).encode() for e in events]


def core_rate(bodies: list[bytes], policy) -> tuple[float, float, list[dict]]:
    """Events per CPU-second of the core as it runs and of the same core keeping nothing from one
    judgement to the next (exhaustive: every comparison worked out, the engine asked each time),
    then (a pass not timed) the facts of its dealer judgements, for the baseline."""
    core = RulesCore(policy)
    judge = Judge(core)
    gc.collect()
    started = time.process_time()
    for body in bodies:
        judge.handle(parse_event(body))
    spent = time.process_time() - started
    core.close()
    core = RulesCore(policy, exhaustive=True)
    judge = Judge(core)
    gc.collect()
    started = time.process_time()
    for body in bodies:
        judge.handle(parse_event(body))
    exhaustive = len(bodies) / (time.process_time() - started)
    core.close()
    core = RulesCore(policy, exhaustive=True)  # every judgement's measures given to the engine
    judge = Judge(core)
    facts: list[dict] = []
    matcher = core._matchers["dealer"]
    original = matcher.match

    def recording(fact):
        facts.append(dict(fact))
        return original(fact)

    matcher.match = recording
    for body in bodies:
        judge.handle(parse_event(body))
    del matcher.match  # (the matcher is reused by the next core: it must not record that one's)
    core.close()
    return len(bodies) / spent, exhaustive, facts


def bare_rate(facts: list[dict], policy) -> float:
    """durable-rules alone: `post` each fact (as the engine saw it) to the same rules."""

    class Host(durable_engine.Host):
        def get_action(self, name):
            return lambda c: None

    host = Host()
    rules = {r.id: {"all": [{"m": copy.deepcopy(r.pattern)}], "run": r.id} for r in policy.scoped("dealer")}
    host.set_rulesets({"bare": rules})
    messages = [dict(f, id=n, sid="0") for n, f in enumerate(facts)]
    gc.collect()
    started = time.process_time()
    for message in messages:
        try:
            host.post("bare", message)
        except durable_engine.MessageNotHandledException:
            pass
    return len(messages) / (time.process_time() - started)


def memory_per_dealer(policy, dealers: int) -> tuple[float, int]:
    """State of one realistic dealer (built by the real core from 90 days of events), stored
    100,000 times as independent objects; RSS growth divided by the number of dealers."""
    core = RulesCore(policy)
    judge = Judge(core)
    for body in interleaved(1, 90, seed=7):
        judge.handle(parse_event(body))
    template = json.dumps(to_doc(core.states["D-0"]))
    events_kept = sum(len(s.times) for s in core.states["D-0"].series.values())
    gc.collect()
    before = _rss()
    states = {}
    for n in range(dealers):
        doc = json.loads(template.replace('"D-0', f'"X{n}-'))  # distinct strings, as in real life
        state = from_doc(doc)
        states[state.dealer_id] = state
    gc.collect()
    return (_rss() - before) / dealers, events_kept


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def measure(events: int, dealers: int) -> dict[str, float]:
    policy = policies.load(ROOT / "policies" / "default.yaml")
    bodies = interleaved(max(1, events // 90), 90)[:events]
    ours, exhaustive, facts = core_rate(bodies, policy)
    bare = bare_rate(facts, policy)
    with tempfile.NamedTemporaryFile("wb", suffix=".ndjson", delete=False) as handle:
        handle.write(b"\n".join(bodies) + b"\n")
    started = time.perf_counter()
    backtest(handle.name, policy, None, out=io.StringIO(), err=io.StringIO())
    backtest_rate = len(bodies) / (time.perf_counter() - started)
    per_dealer, kept = memory_per_dealer(policy, dealers)
    return {
        "events": len(bodies),
        "judgements": len(facts),
        "core": ours,
        "exhaustive": exhaustive,
        "bare": bare,
        "backtest": backtest_rate,
        "memory_kb": per_dealer / 1024,
        "kept": kept,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dealers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=60_000)
    args = parser.parse_args()
    r = measure(args.events, args.dealers)
    print(f"core      {r['events']} events, {r['judgements']} dealer judgements: {r['core']:8.0f} events per CPU-second")
    print(f"bare      durable-rules post of the same {r['judgements']} facts:   {r['bare']:8.0f} posts per CPU-second")
    print(f"ratio     core / bare durable-rules = {r['core'] / r['bare']:.2f} (goal >= 0.3)")
    kept = r["core"] / r["exhaustive"]
    print(f"kept      core / the same core keeping nothing between judgements ({r['exhaustive']:.0f}) = {kept:.2f}")
    ratio = r["backtest"] / r["bare"]
    print(f"backtest  {r['backtest']:8.0f} events/s (wall clock, file to alerts): {ratio:.2f} of bare (goal >= 0.5)")
    print(
        f"memory    {r['memory_kb']:.2f} KB per dealer at {args.dealers} dealers "
        f"(90 days of history, {r['kept']} sale values kept in windows; goal <= 2 KB)"
    )


if __name__ == "__main__":
    main()
