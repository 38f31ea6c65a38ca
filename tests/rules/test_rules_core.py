"""Every default rule at its exact boundary (a case that fires, one that does not), through
the real core and durable-rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from factories import feed, promotion_planned, promotion_spend, sale, visit

from services.common.alerts import AlertSignal, PromotionEvaluation
from services.common.events import parse_event
from services.rules import policy
from services.rules.core import RulesCore, TooLate

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


def fired(outputs, rule_id):
    return [s for s in outputs if isinstance(s, AlertSignal) and s.rule_id == rule_id and s.state == "firing"]


def event(kind: str, dealer: str, at: dt.datetime, **fields) -> dict:
    from factories import _base

    return {**_base(kind, dealer, at, None), **fields}


def target(dealer, at, period, sales="0", outlets=0):
    return event("target.set", dealer, at, period=period, sales_target=str(sales), active_outlets_target=outlets)


def visits_every_20_days(dealer, start, days, kinds=("routine",)):
    return [visit(dealer, start + k * 20 * DAY + DAY, kind=kinds[k % len(kinds)]) for k in range(days // 20 + 1)]


# --- sales-drop ---


def baseline(dealer: str, weekly_total: float) -> list[dict]:
    """A first event at T0, then one sale a week inside (t-63d, t-7d] for t = T0 + 63d."""
    events = [visit(dealer, T0)]
    events += [sale(dealer, T0 + DAY + k * 7 * DAY, weekly_total) for k in range(8)]
    events += visits_every_20_days(dealer, T0, 60)
    return sorted(events, key=lambda e: e["occurred_at"])


@pytest.mark.parametrize(
    ("weekly", "last_week", "fires"),
    [
        (1000, "699.99", True),  # W < 0.7 x B, B exactly at the 1,000 minimum
        (1000, "700.00", False),  # W == 0.7 x B: not below
        (999.99, "0.01", False),  # B below 1,000: too small a dealer to judge
    ],
)
def test_sales_drop_boundaries(core, weekly, last_week, fires):
    t = T0 + 63 * DAY
    drops = fired(feed(core, *baseline("D1", weekly), sale("D1", t, last_week)), "sales-drop")
    assert bool(drops) is fires
    if fires:
        assert drops[0].details["measures"]["sales_7d"] == pytest.approx(699.99)
        assert drops[0].details["measures"]["sales_baseline_weekly"] == pytest.approx(1000)
        assert "699.99" in drops[0].summary and "1,000.00" in drops[0].summary


def test_sales_drop_needs_63_days_since_first_seen(core):
    events = baseline("D1", 2000)
    events[0] = visit("D1", T0 + SECOND)  # first seen one second later: 62.99998 days at t
    assert not fired(feed(core, *events, sale("D1", T0 + 63 * DAY, "1")), "sales-drop")


def test_sales_drop_window_excludes_its_start(core):
    """A sale exactly 7 days before t belongs to the baseline, not to the last week."""
    t = T0 + 63 * DAY
    drop = fired(feed(core, *baseline("D1", 1000), sale("D1", t - 7 * DAY, "1000"), sale("D1", t, "1")), "sales-drop")
    assert drop and drop[-1].details["measures"]["sales_7d"] == pytest.approx(1)
    assert drop[-1].details["measures"]["sales_baseline_weekly"] == pytest.approx(9000 / 8)


# --- dealer-inactive ---


def test_dealer_inactive_boundary_and_returns_do_not_count(core):
    feed(core, sale("D2", T0), visit("D2", T0))
    later = T0 + 21 * DAY
    assert not fired(feed(core, sale("D2", later, "-50", quantity=-1)), "dealer-inactive")  # a return
    assert fired(feed(core, visit("D2", later + SECOND)), "dealer-inactive")


def test_dealer_inactive_needs_a_sale_first(core):
    assert not fired(feed(core, visit("D2", T0), visit("D2", T0 + 40 * DAY)), "dealer-inactive")


# --- target-pace ---


@pytest.mark.parametrize(("mtd", "fires"), [("7199.99", True), ("7200.01", False)])  # one cent either side
def test_target_pace_boundary(core, mtd, fires):
    month = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    t = month + 9 * DAY  # 10 January 00:00: day 10, 9 of 31 days elapsed
    threshold = 0.8 * 31000 * 9 / 31  # = 7200
    outputs = feed(core, target("D3", month, "2026-01", sales=31000), sale("D3", month + 2 * DAY, mtd), visit("D3", t))
    pace = fired(outputs, "target-pace")
    assert bool(pace) is fires
    if fires:
        assert pace[0].details["thresholds"]["sales_mtd <"] == pytest.approx(threshold)


def test_target_pace_waits_for_day_10_and_needs_this_months_target(core):
    month = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    outputs = feed(core, target("D3", month, "2026-01", sales=31000), visit("D3", month + 9 * DAY - SECOND))
    assert not fired(outputs, "target-pace")  # 9 January 23:59:59, nothing sold
    assert not fired(feed(core, target("D4", month, "2025-12", sales=31000), visit("D4", month + 12 * DAY)), "target-pace")


# --- distribution-shrink ---


@pytest.mark.parametrize(("outlets", "fires"), [(2, True), (3, False)])
def test_distribution_shrink_boundary(core, outlets, fires):
    events = [target("D5", T0, "2026-01", outlets=3)]
    events += [sale("D5", T0 + (k + 1) * DAY, outlet_id=f"O-{k}") for k in range(outlets)]
    events += [sale("D5", T0 + 5 * DAY, "-10", quantity=-1, outlet_id="O-returns")]  # a return is no activity
    events += [visit("D5", T0 + 30 * DAY)]  # exactly 30 days after first seen
    assert bool(fired(feed(core, *events), "distribution-shrink")) is fires


def test_distribution_shrink_warm_up(core):
    events = [target("D5", T0, "2026-01", outlets=3), sale("D5", T0 + DAY, outlet_id="O-1"), visit("D5", T0 + 30 * DAY - SECOND)]
    assert not fired(feed(core, *events), "distribution-shrink")


# --- visits ---


@pytest.mark.parametrize(
    ("rule", "kind", "days"),
    [("visit-overdue", "routine", 30), ("leadership-visit-overdue", "leadership", 90), ("symposium-overdue", "symposium", 92)],
)
def test_visit_rules_boundaries(core, rule, kind, days):
    dealer = f"V-{rule}"
    feed(core, visit(dealer, T0, kind=kind))
    assert not fired(feed(core, sale(dealer, T0 + days * DAY)), rule)
    assert fired(feed(core, sale(dealer, T0 + days * DAY + SECOND)), rule)


def test_routine_visits_do_not_count_as_leadership_visits(core):
    events = [visit("D6", T0, kind="leadership")] + [visit("D6", T0 + k * 10 * DAY, kind="routine") for k in range(1, 10)]
    outputs = feed(core, *events, visit("D6", T0 + 90 * DAY + SECOND, kind="routine"))
    assert fired(outputs, "leadership-visit-overdue") and not fired(outputs, "visit-overdue")


def test_absence_fires_by_clock_and_resolves_on_visit(core):
    feed(core, sale("D7", T0), visit("D7", T0))
    opened = []
    while not opened:
        deadline = core.next_deadline("D7")
        opened = fired(core.tick("D7", deadline), "visit-overdue")
    assert opened[0].opened_at == T0 + 30 * DAY + SECOND  # exact, not at the next midnight
    closed = [s for s in feed(core, visit("D7", T0 + 31 * DAY)) if s.rule_id == "visit-overdue"]
    assert [(s.state, s.alert_id) for s in closed] == [("resolved", opened[0].alert_id)]


def test_the_clock_wakes_at_every_local_midnight(default_policy):
    text = Path("policies/default.yaml").read_text()
    shanghai = policy.loads(text.replace("timezone: UTC", "timezone: Asia/Shanghai"))
    for chosen, midnight in ((default_policy, "2026-01-06T00:00:00+00:00"), (shanghai, "2026-01-05T16:00:00+00:00")):
        core = RulesCore(chosen)
        feed(core, visit("D8", T0))
        assert dt.datetime.fromtimestamp(core.next_deadline("D8"), dt.UTC).isoformat() == midnight


# --- promotions ---


def approved(dealer, at, promotion):
    return event("promotion.approved", dealer, at, promotion_id=promotion, approved_by="Zhao Lei")


def test_unapproved_spend(core):
    planned = promotion_planned("D9", T0, "P1", owner="Li Na")
    outputs = feed(core, planned, promotion_spend("D9", T0 + DAY, "P1", "10"), approved("D9", T0 + DAY + SECOND, "P1"))
    unapproved = fired(outputs, "promotion-unapproved-spend")
    assert unapproved and unapproved[0].owner == "Li Na" and "Li Na" in unapproved[0].summary
    # approved at the very time of the spend: fine
    ok = feed(
        core, promotion_planned("D9", T0, "P2"), approved("D9", T0 + DAY, "P2"), promotion_spend("D9", T0 + DAY, "P2", "10")
    )
    assert not fired(ok, "promotion-unapproved-spend")
    # approved but never planned
    assert fired(feed(core, approved("D9", T0, "P3"), promotion_spend("D9", T0 + DAY, "P3", "10")), "promotion-unapproved-spend")


def test_promotion_over_budget_boundary_and_owner(core):
    feed(core, promotion_planned("D4", T0, "P1", budget="1000", owner="Li Na"), approved("D4", T0, "P1"))
    assert not fired(feed(core, promotion_spend("D4", T0, "P1", "1000")), "promotion-over-budget")
    first = fired(feed(core, promotion_spend("D4", T0 + SECOND, "P1", "0.01")), "promotion-over-budget")
    assert first and first[0].owner == "Li Na" and first[0].severity == "critical"
    assert "Li Na" in first[0].summary and first[0].subject == "P1"
    again = fired(feed(core, promotion_spend("D4", T0 + 2 * SECOND, "P1", "5")), "promotion-over-budget")
    assert again[0].alert_id == first[0].alert_id and again[0].firing_count == 2


@pytest.mark.parametrize(("extra", "fires", "verdict"), [("999.99", True, "ineffective"), ("1000.00", False, "effective")])
def test_promotion_ineffective_boundary_and_evaluation(core, extra, fires, verdict):
    starts = dt.datetime(2026, 3, 11, tzinfo=dt.UTC)  # L = 10 days: 11 to 20 March
    plan = dict(
        promotion_planned("E1", starts - 20 * DAY, "P1", budget="5000", owner="Wang Fang"),
        starts_on="2026-03-11",
        ends_on="2026-03-20",
    )
    events = [plan, approved("E1", starts - 20 * DAY, "P1")]
    events += [sale("E1", starts - 10 * DAY, "2000"), sale("E1", starts - SECOND, "1000")]  # S = 3000 (starts - 10d included)
    events += [sale("E1", starts - 10 * DAY - SECOND, "777")]  # just before S's period
    events += [sale("E1", starts, "1500"), sale("E1", starts + 10 * DAY - SECOND, str(1500 + float(extra)))]  # P
    events += [sale("E1", starts + 10 * DAY, "555")]  # 21 March: after the promotion
    events += [promotion_spend("E1", starts, "P1", "1000"), event("promotion.ended", "E1", starts + 11 * DAY, promotion_id="P1")]
    outputs = feed(core, *sorted(events, key=lambda e: e["occurred_at"]))
    assert bool(fired(outputs, "promotion-ineffective")) is fires
    evaluation = [o for o in outputs if isinstance(o, PromotionEvaluation)][0]
    assert (evaluation.days, evaluation.sales_before, evaluation.spend) == (10, 3000, 1000)
    assert evaluation.sales_during == pytest.approx(3000 + float(extra))
    assert evaluation.ratio == pytest.approx(float(extra) / 1000) and evaluation.verdict == verdict
    assert evaluation.owner == "Wang Fang"


# --- time and idempotency ---


def test_repeated_event_id_is_not_counted_twice(core):
    feed(core, promotion_planned("D5", T0, "P1", budget="1000"))
    spend = promotion_spend("D5", T0, "P1", "600", event_id="spend-1")
    feed(core, spend)
    assert core.handle(parse_event(spend)) is None
    assert core.states["D5"].promotions["P1"].spend == 600


def test_late_events_within_the_bound_count_older_ones_are_refused(core):
    feed(core, visit("L1", T0), sale("L1", T0 + 40 * DAY))
    late = feed(core, sale("L1", T0 + 33 * DAY + SECOND, "5"))  # within 7 days late: counted ...
    assert core.states["L1"].latest == (T0 + 40 * DAY).timestamp()  # ... judged at the latest time
    assert fired(late, "visit-overdue")
    assert core.measures("L1", (T0 + 40 * DAY).timestamp())["sales_7d"] == pytest.approx(105)
    with pytest.raises(TooLate, match="more than 7d older"):
        core.handle(parse_event(sale("L1", T0 + 33 * DAY - SECOND, "5")))


def test_state_round_trips_through_the_document_format(core):
    from services.rules.store import from_doc, to_doc

    end = T0 + 62 * DAY
    feed(
        core,
        *baseline("D7", 1500),
        promotion_planned("D7", end, "P.1$", budget="10"),
        promotion_spend("D7", end, "P.1$", "20"),
        sale("D7", end, outlet_id="O.1"),
        target("D7", end, "2026-01", 100, 2),
    )
    state = core.states["D7"]
    assert from_doc(to_doc(state)) == state


def test_the_latest_region_given_labels_the_dealers_alerts(core):
    from services.rules.store import from_doc, to_doc

    at = T0 + 62 * DAY
    feed(core, {**sale("G1", at), "region": "north"}, {**sale("G1", at - DAY), "region": "west"})  # an older event
    state = core.states["G1"]
    assert state.region == "north" and from_doc(to_doc(state)) == state
    outputs = feed(core, promotion_planned("G1", at, "P", budget="10"), promotion_spend("G1", at, "P", "20"))
    assert {s.labels.get("region") for s in outputs if isinstance(s, AlertSignal)} == {"north"}
    feed(core, {**sale("G1", at + DAY), "region": "east"})  # the dealer moved
    assert core.states["G1"].region == "east"


def test_what_a_judgement_keeps_for_the_next_changes_no_output():
    """The engine's answer for one outcome of a scope's comparisons is reused (engine.Matcher) and
    a deadline works out again only the dealer comparisons whose measures can have changed
    (outcomes.py): every signal, evaluation and standing of whole histories is what working
    everything out and asking the engine at every judgement gives (RulesCore(exhaustive=True))."""
    import json

    from histories import history, support_history
    from network import network_history

    from services.rules.judge import Judge

    histories = [
        network_history(dt.datetime(2026, 11, 1, tzinfo=dt.UTC)),
        support_history(dt.datetime(2026, 6, 30, tzinfo=dt.UTC)),
        history(dt.datetime(2026, 3, 31, tzinfo=dt.UTC), dealers=8, days=120),
    ]
    for events in histories:
        bodies = [json.dumps(e) for e in events]
        end = max(parse_event(b).occurred_at for b in bodies).timestamp() + 30 * 86400
        runs, asked = [], []
        for exhaustive in (True, False):
            path = Path(__file__).resolve().parents[2] / "policies" / "default.yaml"
            core = RulesCore(policy.load(path), exhaustive=exhaustive)
            judge = Judge(core)
            outputs = [o.model_dump_json() for b in bodies for o in judge.handle(parse_event(b))[0]]
            outputs += [o.model_dump_json() for o in judge.finish(end)]
            runs.append(outputs)
            asked.append(sum(len(m._memo) for m in core._matchers.values()))
            core.close()
        assert runs[0] == runs[1] and len(runs[0]) > 1000
        assert asked[0] == 0 and 0 < asked[1] < len(runs[0]) / 10  # the engine was asked a few dozen distinct questions
