"""The three pipeline rules at their exact boundaries, through the real core and durable-rules."""

from __future__ import annotations

import datetime as dt

import pytest

from factories import promotion_planned, promotion_spend, sale, visit
from services.common.events import parse_event
from services.rules import policy
from services.rules.core import RulesCore

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture(scope="module")
def default_policy():
    return policy.load("policies/default.yaml")


@pytest.fixture
def core(default_policy):
    return RulesCore(default_policy)


def feed(core: RulesCore, *events: dict) -> list:
    signals = []
    for event in events:
        result = core.handle(parse_event(event))
        signals.extend(result or [])
    return signals


def fired(signals, rule_id):
    return [s for s in signals if s.rule_id == rule_id and s.state == "firing"]


def baseline(dealer: str, weekly_total: float) -> list[dict]:
    """A first event at T0, then one sale a week inside (t-63d, t-7d] for t = T0 + 63d."""
    events = [visit(dealer, T0)]
    events += [sale(dealer, T0 + DAY + k * 7 * DAY, weekly_total) for k in range(8)]
    # keep visit-overdue quiet so only sales-drop is under test
    events += [visit(dealer, T0 + k * 20 * DAY + DAY) for k in range(1, 4)]
    return sorted(events, key=lambda e: e["occurred_at"])


@pytest.mark.parametrize(
    ("weekly", "last_week", "fires"),
    [
        (1000, "699.99", True),   # W < 0.7 x B, B exactly at the 1,000 minimum
        (1000, "700.00", False),  # W == 0.7 x B: not below
        (999.99, "0.01", False),  # B below 1,000: too small a dealer to judge
    ],
)
def test_sales_drop_boundaries(core, weekly, last_week, fires):
    t = T0 + 63 * DAY
    signals = feed(core, *baseline("D1", weekly), sale("D1", t, last_week))
    drops = fired(signals, "sales-drop")
    assert bool(drops) is fires
    if fires:
        assert drops[0].details["measures"]["sales_7d"] == pytest.approx(699.99)
        assert drops[0].details["measures"]["sales_baseline_weekly"] == pytest.approx(1000)
        assert "699.99" in drops[0].summary and "1,000.00" in drops[0].summary


def test_sales_drop_needs_63_days_since_first_seen(core):
    events = baseline("D1", 2000)
    events[0] = visit("D1", T0 + SECOND)  # first seen one second later: 62.99998 days at t
    signals = feed(core, *events, sale("D1", T0 + 63 * DAY, "1"))
    assert not fired(signals, "sales-drop")


def test_sales_drop_window_excludes_its_start(core):
    """A sale exactly 7 days before t belongs to the baseline, not to the last week."""
    t = T0 + 63 * DAY
    events = baseline("D1", 1000)
    signals = feed(core, *events, sale("D1", t - 7 * DAY, "1000"), sale("D1", t, "1"))
    drop = fired(signals, "sales-drop")
    assert drop and drop[-1].details["measures"]["sales_7d"] == pytest.approx(1)
    assert drop[-1].details["measures"]["sales_baseline_weekly"] == pytest.approx(9000 / 8)


def test_visit_overdue_boundary_on_events(core):
    feed(core, visit("D2", T0))
    assert not fired(feed(core, sale("D2", T0 + 30 * DAY)), "visit-overdue")
    signals = feed(core, sale("D2", T0 + 30 * DAY + SECOND))
    assert fired(signals, "visit-overdue")[0].details["measures"]["days_since_visit"] > 30


def test_visit_overdue_fires_by_clock_and_resolves_on_visit(core):
    feed(core, sale("D3", T0))  # never visited: counts from first seen
    ticks = []
    while not fired(ticks[-1][1] if ticks else [], "visit-overdue"):
        deadline = core.next_deadline("D3")
        ticks.append((deadline, core.tick("D3", deadline)))
    deadlines = [d for d, _ in ticks]
    # woken when the sale left the 7-day window, at exactly 30 days, then one second later
    assert deadlines == [(T0 + d).timestamp() for d in (7 * DAY, 30 * DAY, 30 * DAY + SECOND)]
    opened = fired(ticks[-1][1], "visit-overdue")[0]
    assert opened.opened_at == T0 + 30 * DAY + SECOND
    closed = feed(core, visit("D3", T0 + 31 * DAY))
    assert [(s.rule_id, s.state, s.alert_id) for s in closed] == [("visit-overdue", "resolved", opened.alert_id)]


def test_promotion_over_budget_boundary_and_owner(core):
    at = T0
    feed(core, promotion_planned("D4", at, "P1", budget="1000", owner="Li Na"))
    assert not fired(feed(core, promotion_spend("D4", at, "P1", "1000")), "promotion-over-budget")
    first = fired(feed(core, promotion_spend("D4", at + SECOND, "P1", "0.01")), "promotion-over-budget")
    assert first and first[0].owner == "Li Na" and first[0].severity == "critical"
    assert "Li Na" in first[0].summary and first[0].subject == "P1"
    again = fired(feed(core, promotion_spend("D4", at + 2 * SECOND, "P1", "5")), "promotion-over-budget")
    assert again[0].alert_id == first[0].alert_id and again[0].firing_count == 2


def test_repeated_event_id_is_not_counted_twice(core):
    feed(core, promotion_planned("D5", T0, "P1", budget="1000"))
    spend = promotion_spend("D5", T0, "P1", "600", event_id="spend-1")
    assert feed(core, spend) == [] or not fired(feed(core, spend), "promotion-over-budget")
    assert core.handle(parse_event(spend)) is None
    assert core.states["D5"].promotions["P1"].spend == 600


def test_judgement_time_never_goes_back(core):
    feed(core, visit("D6", T0), sale("D6", T0 + 40 * DAY))
    late = feed(core, sale("D6", T0 + 10 * DAY, "5"))  # a late event is counted ...
    assert core.states["D6"].latest == (T0 + 40 * DAY).timestamp()  # ... but judged at the latest time
    assert fired(late, "visit-overdue")


def test_state_round_trips_through_the_document_format(core):
    from services.rules.store import from_doc, to_doc

    feed(core, *baseline("D7", 1500), promotion_planned("D7", T0, "P.1$", budget="10"),
         promotion_spend("D7", T0, "P.1$", "20"))
    state = core.states["D7"]
    assert from_doc(to_doc(state)) == state
