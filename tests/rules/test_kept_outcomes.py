"""What one judgement keeps for the next (the engine's answers, the outcomes of the dealer
comparisons: outcomes.py) changes no output: on random histories built to move every kind of
measure at the moments that matter (late events, a first time seen moved back, a registration
after the alert, outlets opened and closed, a silent month, targets set mid-month, fractions of
a second), every signal, evaluation and standing is what working everything out at every
judgement gives (`RulesCore(exhaustive=True)`)."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest
from factories import (
    dealer_registered,
    iso,
    network_event,
    outlet_registered,
    promotion_approved,
    promotion_planned,
    promotion_spend,
    sale,
    visit,
)

from services.common.events import parse_event
from services.rules import policy
from services.rules.core import RulesCore
from services.rules.judge import Judge, Refused
from services.rules.store import from_doc, to_doc

ROOT = Path(__file__).resolve().parents[2]
START = dt.datetime(2026, 1, 3, 7, 30, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def random_history(seed: int, dealers: int = 5, days: int = 150) -> list[dict]:
    """Events in the order a client posts them: mostly in time order, some a few days late."""
    rng = random.Random(seed)
    events: list[dict] = []
    for d in range(dealers):
        dealer = f"R{seed}-{d}"
        outlets = [f"O{k}" for k in range(5)]
        registered_on = rng.choice([None, 0, 5, 12, 40])
        silent = set(range(rng.randint(20, 100), rng.randint(40, 130)))  # a stretch with no sale
        base = rng.choice([200, 400, 900])

        def at(day: int) -> dt.datetime:  # fractions of a second: crossings between two whole seconds
            return START + day * DAY + dt.timedelta(seconds=rng.uniform(0, 86_399))

        for day in range(days):
            if day == registered_on:
                events.append(dealer_registered(dealer, at(day)))
            if rng.random() < 0.05:
                events.append(outlet_registered(dealer, at(day), rng.choice(outlets)))
            if rng.random() < 0.02:
                events.append(network_event("outlet.closed", dealer, at(day), outlet_id=rng.choice(outlets)))
            if day not in silent:
                for _ in range(rng.choice([0, 1, 1, 2, 3])):
                    quantity = rng.choice([1, 2, 3, -1])
                    amount = base * rng.uniform(0.2, 1.5) * (1 if quantity > 0 else -0.3)
                    events.append(sale(dealer, at(day), f"{amount:.2f}", quantity, outlet_id=rng.choice(outlets)))
            if rng.random() < 0.08:
                events.append(visit(dealer, at(day), rng.choice(["routine", "routine", "leadership", "symposium"])))
            moment = START + day * DAY
            if moment.day in (1, rng.randint(2, 28)) and rng.random() < 0.7:  # the month's target, sometimes set late
                target = {
                    **network_event("target.set", dealer, at(day)),
                    "period": moment.strftime("%Y-%m"),
                    "sales_target": str(base * rng.choice([10, 25, 40])),
                    "active_outlets_target": rng.randint(1, 5),
                }
                if rng.random() < 0.6:
                    target["outlet_coverage_target"] = str(rng.choice([0.2, 0.5, 0.9]))
                events.append(target)
            if day % 45 == 10:
                promotion = f"P{day}"
                events += [
                    promotion_planned(dealer, at(day), promotion, budget="5000"),
                    promotion_approved(dealer, at(day + 1), promotion),
                    promotion_spend(dealer, at(day + 3), promotion, amount=str(rng.choice([1000, 6000]))),
                ]
    events.sort(key=lambda e: e["occurred_at"])
    for _ in range(len(events) // 15):  # delivered late: up to 6 days after its place
        index = rng.randrange(len(events))
        moved = events.pop(index)
        events.insert(min(len(events), index + rng.randint(1, 40)), moved)
    for d in range(0, dealers, 2):  # a dealer's first time seen moves back: an event older than its first
        first = next(e for e in events if e["dealer_id"] == f"R{seed}-{d}")
        earlier = dt.datetime.fromisoformat(first["occurred_at"].replace("Z", "+00:00")) - dt.timedelta(days=3, seconds=0.5)
        late = sale(f"R{seed}-{d}", earlier, "500.00", outlet_id="O1")
        events.insert(events.index(first) + 3, {**late, "occurred_at": iso(earlier)})
    return events


DEFAULT = (ROOT / "policies" / "default.yaml").read_text(encoding="utf-8")
# later events counted, and an age that crosses its number when a late event moves the first time seen
LATE = DEFAULT.replace("lateness: 7d", "lateness: 30d").replace("first_seen_days > 7", "first_seen_days > 2.5")
# comparisons of shapes the default policy has not: a measure that moves at every moment alone,
# ages compared with each other, a number on the left of an age, a `latest` or the registration alone
EXTRA = {
    "late-in-month": "month_fraction_elapsed >= 0.5",
    "visits-behind": "days_since_visit > days_since_sale + 10",
    "many-outlets": "active_outlets_target > 3",
    "old-unregistered": "20 < first_seen_days and dealer_registered == 0",
    "symposium-due": "days_since_symposium >= 10",
}
RULE = "  - {{id: {}, description: x, severity: info, kind: condition, when: {}, summary: x}}\n"
SHAPES = DEFAULT.replace("rules:\n", "rules:\n" + "".join(RULE.format(*rule) for rule in EXTRA.items()), 1)


def outputs(events: list[dict], exhaustive: bool, text: str = DEFAULT, alerts_only: bool = False) -> list[str]:
    """Every output of the history, then every dealer's state as it is stored; a third of the way
    in the states are stored and loaded again (a restart: nothing derived is kept), two thirds in
    a policy with outlets silent from 20 days instead of 45 is loaded (every outlet judged again)."""
    core = RulesCore(policy.loads(text), exhaustive=exhaustive, alerts_only=alerts_only)
    judge = Judge(core)
    found: list[str] = []
    try:
        for index, body in enumerate(events):
            if index == len(events) // 3:
                core.states.update({dealer: from_doc(to_doc(state)) for dealer, state in core.states.items()})
            if index == 2 * len(events) // 3:
                changed = policy.loads(text.replace("outlet_days_since_sale > 45", "outlet_days_since_sale > 20"))
                found += [o.model_dump_json() for o in core.use(changed)]
            try:
                found += [o.model_dump_json() for o in judge.handle(parse_event(json.dumps(body)))[0]]
            except Refused as exc:
                found += [o.model_dump_json() for o in exc.outputs] + [f"refused: {exc}"]
        last = max(parse_event(json.dumps(e)).occurred_at for e in events)
        found += [o.model_dump_json() for o in judge.finish(last.timestamp() + 60 * 86_400)]
        found += [json.dumps(to_doc(state), sort_keys=True) for state in core.states.values()]
    finally:
        core.close()
    return found


def shown_by_a_backtest(line: str) -> bool:
    """What the backtest's core builds (alerts_only): not an alert's later firings, nor standings."""
    found = json.loads(line) if line.startswith("{") else {}
    return found.get("kind") != "dealer-standing" and not (found.get("state") == "firing" and found.get("firing_count", 1) > 1)


@pytest.mark.parametrize("seed", range(4))
def test_kept_outcomes_change_no_output_on_random_histories(seed):
    events = random_history(seed)
    expected = outputs(events, exhaustive=True)
    assert outputs(events, exhaustive=False) == expected
    assert outputs(events, exhaustive=False, alerts_only=True) == [line for line in expected if shown_by_a_backtest(line)]
    rules = {json.loads(line)["rule_id"] for line in expected if line.startswith("{") and '"rule_id"' in line}
    # the history reaches what it was built for: the dealer rules come and go
    assert {"unregistered-dealer", "dealer-inactive", "target-pace", "distribution-coverage", "sales-drop"} <= rules


def test_kept_outcomes_of_comparisons_of_every_shape():
    assert "visits-behind" in SHAPES
    events = random_history(11, dealers=6, days=120)
    expected = outputs(events, exhaustive=True, text=SHAPES)
    assert outputs(events, exhaustive=False, text=SHAPES) == expected
    rules = {json.loads(line).get("rule_id") for line in expected if line.startswith("{")}
    assert set(EXTRA) <= rules


def test_kept_outcomes_see_an_age_cross_its_number_a_moment_after_a_judgement():
    """A judgement half a second before `first_seen_days >= 63` comes true (a visit), then the
    clock at that moment: sales-drop opens then, its weekly sales having stopped a week before."""
    first = START + dt.timedelta(seconds=0.25)
    events = [dealer_registered("E1", first)]
    events += [sale("E1", first + day * DAY, "500.00", 1, outlet_id="O1") for day in range(1, 56)]
    crossing = first + 63 * DAY
    events.append(visit("E1", crossing - dt.timedelta(seconds=0.5)))
    events.append(visit("E1", crossing + 2 * DAY))
    expected = outputs(events, exhaustive=True)
    opened = [json.loads(line) for line in expected if '"rule_id":"sales-drop"' in line]
    assert opened and dt.datetime.fromisoformat(opened[0]["at"]) == crossing
    assert outputs(events, exhaustive=False) == expected


def test_kept_outcomes_follow_a_first_time_seen_moved_back():
    assert "first_seen_days > 2.5" in LATE and "lateness: 30d" in LATE
    events = random_history(7, dealers=6, days=40)
    expected = outputs(events, exhaustive=True, text=LATE)
    assert outputs(events, exhaustive=False, text=LATE) == expected


def test_a_promotion_never_ended_closes_at_the_same_judgement():
    """A lateness of 60 hours closes a promotion never ended at noon, a lateness after its last
    day: at the first judgement then (a sale of a week before leaving the window at 14:30), kept
    outcomes or not, and its dealer's stored state is the same."""
    text = DEFAULT.replace("lateness: 7d", "lateness: 60h")
    events = [dealer_registered("Q1", START)]
    for day in range(40):
        if day < 16:  # then only the clock: last week's sales leaving the window
            events += [sale("Q1", START + day * DAY + dt.timedelta(hours=hour), "300.00", 1, outlet_id="O1") for hour in (1, 7)]
        if day % 10 == 0:
            events.append(visit("Q1", START + day * DAY + dt.timedelta(hours=2)))
    events += [promotion_planned("Q1", START + 3 * DAY, "P1"), promotion_approved("Q1", START + 3 * DAY, "P1")]
    events.sort(key=lambda e: e["occurred_at"])
    expected = outputs(events, exhaustive=True, text=text)
    (promotion,) = json.loads(expected[-1])["promotions"]
    closed = dt.datetime.fromtimestamp(promotion["closed_at"], dt.UTC)
    assert (closed.hour, closed.minute) == (14, 30)  # a week after a sale, a quiet deadline after noon
    assert outputs(events, exhaustive=False, text=text) == expected


def test_a_quiet_deadline_is_stored_like_any_judgement():
    """A deadline judged quietly (last week's sale leaving the window, nothing holds) moves the
    dealer's time like any judgement, and marks it to be stored (the live service writes it)."""
    core = RulesCore(policy.loads(DEFAULT))
    judge = Judge(core)
    try:
        events = [dealer_registered("S1", START), visit("S1", START)]
        events += [sale("S1", START + day * DAY + dt.timedelta(hours=2), "300.00", 1, outlet_id="O1") for day in range(3)]
        for body in events:
            judge.handle(parse_event(json.dumps(body)))
        leaves = START + 7 * DAY + dt.timedelta(hours=2)  # the first sale leaves sales_7d
        judge.advance(leaves.timestamp() - 1)  # (the midnights before)
        core.dirty.clear()
        assert core.next_deadline("S1") == leaves.timestamp()
        calls = []
        quiet = core._quiet_tick
        core._quiet_tick = lambda state, t: calls.append(t) or quiet(state, t)  # type: ignore[method-assign]
        assert judge.advance(leaves.timestamp()) == [] and calls == [leaves.timestamp()]
        assert core.states["S1"].latest == leaves.timestamp() and core.dirty == {"S1"}
    finally:
        core.close()
