"""What one dealer's outlets and plans cost a judgement (#22): the CPU time per event of posting N
visit plans, and N outlets, to one dealer through the rules core, at N = 100, 1,000 and 10,000.
Linear when the cost per item stays flat: the ratio at 10,000 against 100 (measured in the same
run) is the goal (before #22 it was quadratic: 1,500 plans took 65 s here, 43 ms a plan).

Usage: python bench/subjects.py
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.common.events import parse_event  # noqa: E402
from services.rules import policy as policies  # noqa: E402
from services.rules.core import RulesCore  # noqa: E402
from services.rules.judge import Judge  # noqa: E402

START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
SIZES = (100, 1_000, 10_000)


def _event(kind: str, n: int) -> dict:
    base = {"event_id": f"{kind}-{n}", "dealer_id": "D-big", "occurred_at": (START + dt.timedelta(seconds=n)).isoformat()}
    if kind == "plan":
        day = (START.date() + dt.timedelta(days=30 + n % 300)).isoformat()
        return {
            **base,
            "type": "visit.planned",
            "plan_id": f"PL-{n}",
            "planned_for": day,
            "visitor_id": "rep-7",
            "kind": "routine",
        }
    return {**base, "type": "outlet.registered", "outlet_id": f"O-{n}", "name": f"outlet {n}", "level": "retail"}


def per_item(kind: str, count: int) -> float:
    """CPU seconds per event for `count` of one kind, one dealer, through the judge."""
    policy = policies.load(ROOT / "policies" / "default.yaml")
    core = RulesCore(policy)
    judge = Judge(core)
    events = [parse_event(_event(kind, n)) for n in range(count)]
    started = time.process_time()
    for event in events:
        judge.handle(event)
    spent = time.process_time() - started
    core.close()
    return spent / count


def measure() -> dict[str, dict[int, float]]:
    return {kind: {count: per_item(kind, count) for count in SIZES} for kind in ("plan", "outlet")}


if __name__ == "__main__":
    for kind, costs in measure().items():
        cells = ", ".join(f"{count:,}: {cost * 1e6:,.0f} µs" for count, cost in costs.items())
        print(f"{kind}s of one dealer, CPU per item: {cells}; 10,000 vs 100: {costs[10_000] / costs[100]:.2f}")
