"""A year of a generated 2,000-dealer network through `dealerwatch backtest --jobs 2` (#26: goal
<= 10 minutes on this machine), wall time of the whole command, at the density the issue
estimates (~7 M events: about ten a dealer and day). Each dealer: registered with 20 outlets (a
new one now and then, one closed), 6-11 sales a day to its outlets (a return now and then), a
visit every other day carrying out a weekly plan (a leadership visit every 60 days, a symposium
every 90), a monthly target, a promotion a quarter (planned, approved, spent, ended), a piece of
feedback a month answered within days; 6-11 sales a day.

Usage: python bench/year.py [--dealers 2000] [--days 365] [--jobs 2]"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from backtest_jobs import timed_backtest  # noqa: E402

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def dealer_year(dealer: str, days: int, rng: random.Random) -> Iterator[dict]:
    """One dealer's events in time order."""
    n = iter(range(10**9))

    def event(type_: str, at: dt.datetime, **fields: object) -> dict:
        return {"event_id": f"{dealer}-{next(n)}", "type": type_, "dealer_id": dealer, "occurred_at": at.isoformat(), **fields}

    outlets = [f"O-{k}" for k in range(20)]
    yield event("dealer.registered", START, name=f"{dealer} 缝纫设备", region=rng.choice(["north", "east", "south"]))
    for outlet in outlets:
        yield event("outlet.registered", START, outlet_id=outlet, name=f"网点 {outlet}", level="retail")
    daily = rng.randint(4, 12) * 100
    for day in range(days):
        morning = START + dt.timedelta(days=day, hours=8)
        today: list[dict] = []
        if morning.day == 1:
            target = str(daily * 30 * rng.choice([7, 8, 10]) // 10)
            period = morning.strftime("%Y-%m")
            fields = {"period": period, "sales_target": target, "active_outlets_target": 12, "outlet_coverage_target": "0.6"}
            today.append(event("target.set", morning, **fields))
        if day % 30 == 0:
            fields = {"feedback_id": f"F-{day}", "channel": "visit", "topic": "交货期", "text": "希望缩短交货期"}
            today.append(event("feedback.received", morning, **fields))
        if day % 30 == 4:
            today.append(event("feedback.answered", morning, feedback_id=f"F-{day - 4}", by="li.na"))
        if day % 7 == 0:
            planned_for = (morning + dt.timedelta(days=3)).date().isoformat()
            fields = {"plan_id": f"PL-{day}", "planned_for": planned_for, "visitor_id": "rep-1", "kind": "routine"}
            today.append(event("visit.planned", morning, **fields))
        if day % 2 == 1:
            kind = "leadership" if day % 60 == 1 else "symposium" if day % 90 == 3 else "routine"
            plan = {"plan_id": f"PL-{day - day % 7}"} if day % 7 == 3 else {}
            today.append(event("visit", morning + dt.timedelta(hours=2), visitor_id="rep-1", role="rep", kind=kind, **plan))
        promotion = f"P-{day - day % 91 + 10}"  # a promotion a quarter
        if day % 91 == 10:
            starts, ends = (morning + dt.timedelta(days=5)).date(), (morning + dt.timedelta(days=20)).date()
            fields = {"starts_on": starts.isoformat(), "ends_on": ends.isoformat(), "expected_sales": str(daily * 18)}
            today.append(event("promotion.planned", morning, promotion_id=promotion, budget="3000", owner="Wang Fang", **fields))
            today.append(event("promotion.approved", morning, promotion_id=promotion, approved_by="Zhao Lei"))
        if day % 91 in (16, 20, 24):
            today.append(event("promotion.spend", morning, promotion_id=promotion, amount="900"))
        if day % 91 == 32:
            today.append(event("promotion.ended", morning, promotion_id=promotion))
        if day % 120 == 60:
            outlets.append(f"O-{len(outlets)}")
            fields = {"outlet_id": outlets[-1], "name": f"网点 {outlets[-1]}", "level": "sub-distributor"}
            today.append(event("outlet.registered", morning, **fields))
        if day == 200:
            today.append(event("outlet.closed", morning, outlet_id=outlets.pop(3)))
        for _ in range(rng.randint(6, 11)):
            at = morning + dt.timedelta(minutes=rng.randint(0, 600), seconds=rng.randint(0, 59))
            quantity = -1 if rng.random() < 0.03 else rng.randint(1, 4)
            amount = rng.randint(daily // 10, daily // 3) * quantity
            today.append(event("sale", at, outlet_id=rng.choice(outlets), sku="JK-9100", quantity=quantity, amount=str(amount)))
        yield from sorted(today, key=lambda e: e["occurred_at"])


def write_network(path: Path, dealers: int, days: int) -> int:
    """Dealer after dealer (the backtest spreads them over its processes anyway); the count."""
    rng = random.Random(3)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for d in range(dealers):
            lines = [json.dumps(e, ensure_ascii=False) for e in dealer_year(f"Y-{d}", days, rng)]
            handle.write("\n".join(lines) + "\n")
            count += len(lines)
    return count


def measure(dealers: int = 2000, days: int = 365, jobs: int | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "year.ndjson"
        count = write_network(path, dealers, days)
        jobs = jobs or os.cpu_count() or 1
        seconds = timed_backtest(path, jobs)
    return {"events": count, "dealers": dealers, "seconds": seconds, "jobs": jobs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dealers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--jobs", type=int)
    args = parser.parse_args()
    print(measure(args.dealers, args.days, args.jobs))
