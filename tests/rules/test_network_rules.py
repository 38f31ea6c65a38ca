"""The dealer network's rules at their boundaries (a case that fires, one that does not), through
the real core and durable-rules: missed visit plans, silent outlets, distribution coverage,
unregistered dealers, promotions below expectation; dealer names and summaries in two languages."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import dealer_registered, feed, network_event, outlet_registered, promotion_planned, sale, visit, visit_planned

from services.common.alerts import AlertSignal, PromotionEvaluation
from services.rules.store import from_doc, to_doc

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


def signals(outputs, rule_id, state="firing"):
    return [s for s in outputs if isinstance(s, AlertSignal) and s.rule_id == rule_id and s.state == state]


event = network_event
registered = dealer_registered
outlet = outlet_registered
planned = visit_planned


def visit_of(dealer, at, kind="routine", outlet_id=None, plan_id=None):
    extra = {k: v for k, v in {"outlet_id": outlet_id, "plan_id": plan_id}.items() if v}
    return {**visit(dealer, at, kind=kind), **extra}


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


# --- planned-visit-missed ---

PLANNED_FOR = dt.date(2026, 3, 10)
WINDOW_END = midnight(PLANNED_FOR + 3 * DAY)  # the end of planned_for + 2 days


def test_a_plan_is_missed_one_second_after_its_window_and_names_the_visitor(core):
    feed(core, registered("D1", T0), planned("D1", T0, "PL-1", PLANNED_FOR))
    assert not signals(feed(core, sale("D1", WINDOW_END)), "planned-visit-missed")  # at the end: not yet passed
    missed = signals(feed(core, sale("D1", WINDOW_END + SECOND)), "planned-visit-missed")
    assert [(s.subject, s.owner, s.dealer_name) for s in missed] == [("PL-1", "rep-7", "华东缝纫设备有限公司")]
    assert "拜访计划 PL-1" in missed[0].summaries["zh"] and "Visit plan PL-1" in missed[0].summaries["en"]


def test_the_clock_raises_a_missed_plan_exactly_when_its_window_closes(core):
    feed(core, registered("D1", T0), planned("D1", T0, "PL-1", PLANNED_FOR))
    missed = []
    for _ in range(100):
        if missed := signals(core.tick("D1", core.next_deadline("D1")), "planned-visit-missed"):
            break
    assert missed[0].opened_at == WINDOW_END + SECOND


@pytest.mark.parametrize(
    ("visit_at", "kind", "outlet_id", "plan_id", "fulfils"),
    [
        (midnight(PLANNED_FOR - 7 * DAY), "routine", "O-1", None, True),  # the window's first second
        (midnight(PLANNED_FOR - 7 * DAY) - SECOND, "routine", "O-1", None, False),  # one second before it
        (WINDOW_END - SECOND, "routine", "O-1", None, True),  # its last second
        (WINDOW_END - SECOND, "leadership", "O-1", None, False),  # another kind
        (midnight(PLANNED_FOR), "routine", "O-2", None, False),  # another outlet than the plan's
        (midnight(PLANNED_FOR), "routine", None, None, False),  # no outlet, the plan names one
        (T0 + 30 * DAY, "symposium", None, "PL-1", True),  # naming the plan: any kind, any time
    ],
)
def test_what_fulfils_a_plan(core, visit_at, kind, outlet_id, plan_id, fulfils):
    feed(core, registered("D2", T0 - 10 * DAY), planned("D2", T0 - 10 * DAY, "PL-1", PLANNED_FOR, outlet_id="O-1"))
    feed(core, visit_of("D2", visit_at, kind=kind, outlet_id=outlet_id, plan_id=plan_id))
    later = max(visit_at, WINDOW_END) + SECOND
    assert bool(signals(feed(core, sale("D2", later)), "planned-visit-missed")) is not fulfils


def test_a_missed_plan_resolves_when_a_visit_carries_it_out_or_it_is_cancelled(core):
    feed(core, planned("D3", T0, "PL-1", PLANNED_FOR), planned("D3", T0, "PL-2", PLANNED_FOR, kind="symposium"))
    opened = signals(feed(core, sale("D3", WINDOW_END + SECOND)), "planned-visit-missed")
    assert sorted(s.subject for s in opened) == ["PL-1", "PL-2"]
    done = signals(feed(core, visit_of("D3", WINDOW_END + 2 * DAY, plan_id="PL-1")), "planned-visit-missed", "resolved")
    assert [s.subject for s in done] == ["PL-1"]
    cancelled = event("visit.plan_cancelled", "D3", WINDOW_END + 3 * DAY, plan_id="PL-2")
    assert [s.subject for s in signals(feed(core, cancelled), "planned-visit-missed", "resolved")] == ["PL-2"]


def test_a_cancelled_plan_is_never_missed(core):
    events = [planned("D4", T0, "PL-1", PLANNED_FOR), event("visit.plan_cancelled", "D4", T0 + DAY, plan_id="PL-1")]
    assert not signals(feed(core, *events, sale("D4", WINDOW_END + 5 * DAY)), "planned-visit-missed")


def test_a_plan_posted_after_its_visit_is_carried_out_by_it(core):
    events = [visit_of("D5", midnight(PLANNED_FOR) - 2 * DAY), planned("D5", midnight(PLANNED_FOR) - DAY, "PL-1", PLANNED_FOR)]
    assert not signals(feed(core, *events, sale("D5", WINDOW_END + DAY)), "planned-visit-missed")


# --- outlet-silent ---


def test_outlet_silent_after_45_days_since_its_last_sale_one_episode_per_outlet(core):
    feed(core, outlet("D6", T0, "O-1"), outlet("D6", T0, "O-2"), sale("D6", T0 + DAY, outlet_id="O-1"))
    silent = signals(feed(core, visit("D6", T0 + 45 * DAY)), "outlet-silent")
    assert [s.subject for s in silent] == []  # O-2: exactly 45 days since registered
    silent = signals(feed(core, visit("D6", T0 + 45 * DAY + SECOND)), "outlet-silent")
    assert [s.subject for s in silent] == ["O-2"]
    assert [s.subject for s in signals(feed(core, visit("D6", T0 + 46 * DAY + SECOND)), "outlet-silent")] == ["O-1", "O-2"]
    back = signals(feed(core, sale("D6", T0 + 47 * DAY, outlet_id="O-2")), "outlet-silent", "resolved")
    assert [s.subject for s in back] == ["O-2"]
    closed = event("outlet.closed", "D6", T0 + 48 * DAY, outlet_id="O-1")
    assert [s.subject for s in signals(feed(core, closed), "outlet-silent", "resolved")] == ["O-1"]


def test_a_return_is_not_a_sale_for_an_outlet(core):
    feed(core, outlet("D7", T0, "O-1"), sale("D7", T0 + 10 * DAY, "-5", quantity=-1, outlet_id="O-1"))
    assert signals(feed(core, visit("D7", T0 + 45 * DAY + SECOND)), "outlet-silent")


# --- distribution-coverage ---


def coverage_target(dealer, at, period, share):
    return event("target.set", dealer, at, period=period, sales_target="0", active_outlets_target=0, outlet_coverage_target=share)


@pytest.mark.parametrize(("buying", "fires"), [(2, True), (3, False)])  # 2/4 < 0.75, 3/4 == 0.75
def test_distribution_coverage_boundary(core, buying, fires):
    events = [outlet("D8", T0, f"O-{k}") for k in range(4)] + [coverage_target("D8", T0, "2026-03", "0.75")]
    events += [sale("D8", T0 + DAY, outlet_id=f"O-{k}") for k in range(buying)]
    events += [sale("D8", T0 + DAY, outlet_id="O-unregistered")]  # not one of its registered outlets
    feed(core, *events)
    assert bool(signals(feed(core, visit("D8", T0 + 2 * DAY)), "distribution-coverage")) is fires


def test_coverage_falls_when_a_sale_leaves_the_30_day_window_and_closed_outlets_do_not_count(core):
    events = [outlet("D9", T0, "O-1"), outlet("D9", T0, "O-2")]
    events += [coverage_target("D9", T0, month, "1") for month in ("2026-03", "2026-04")]
    events += [sale("D9", T0, outlet_id="O-1"), sale("D9", T0 + DAY, outlet_id="O-2")]
    assert signals(feed(core, *events)[-1:], "distribution-coverage", "resolved")  # 2 of 2 bought: resolved
    opened = []
    for _ in range(100):
        if opened := signals(core.tick("D9", core.next_deadline("D9")), "distribution-coverage"):
            break
    assert opened[0].opened_at == T0 + 30 * DAY  # O-1's sale left (t - 30d, t]
    closed = feed(core, event("outlet.closed", "D9", T0 + 30 * DAY + SECOND, outlet_id="O-1"))
    assert signals(closed, "distribution-coverage", "resolved")  # 1 of 1 open outlets bought


def test_coverage_needs_this_months_target_and_an_open_outlet(core):
    assert not signals(feed(core, coverage_target("D10", T0, "2026-03", "1"), visit("D10", T0 + DAY)), "distribution-coverage")
    events = [outlet("D11", T0, "O-1"), coverage_target("D11", T0, "2026-02", "1"), visit("D11", T0 + DAY)]
    assert not signals(feed(core, *events), "distribution-coverage")


# --- unregistered-dealer ---


def test_unregistered_dealer_after_7_days_and_resolved_by_registering(core):
    feed(core, sale("D12", T0))
    assert not signals(feed(core, sale("D12", T0 + 7 * DAY)), "unregistered-dealer")
    opened = signals(feed(core, sale("D12", T0 + 7 * DAY + SECOND)), "unregistered-dealer")
    assert opened and opened[0].dealer_name is None
    resolved = signals(feed(core, registered("D12", T0 + 8 * DAY)), "unregistered-dealer", "resolved")
    assert resolved and resolved[0].dealer_name == "华东缝纫设备有限公司"


def test_a_registered_dealer_is_named_on_every_alert_and_updates_rename_it(core):
    feed(core, registered("D13", T0, name="Old name"), sale("D13", T0))
    feed(core, event("dealer.updated", "D13", T0 + DAY, name="新名称"))
    inactive = signals(feed(core, visit("D13", T0 + 21 * DAY + SECOND)), "dealer-inactive")
    assert inactive[0].dealer_name == "新名称" and "新名称" in inactive[0].summaries["zh"]
    assert not signals(feed(core, visit("D13", T0 + 30 * DAY)), "unregistered-dealer")


# --- promotion-below-expectation ---


@pytest.mark.parametrize(("sold", "fires", "met"), [("799.99", True, False), ("800.00", False, False), ("1000", False, True)])
def test_promotion_below_expectation_boundary_and_evaluation(core, sold, fires, met):
    start = dt.date(2026, 3, 10)
    plan = {**promotion_planned("D14", T0, "P-1", owner="Li Na"), "expected_sales": "1000"}
    plan.update(starts_on=start.isoformat(), ends_on=start.isoformat())
    ended = event("promotion.ended", "D14", midnight(start) + DAY, promotion_id="P-1")
    outputs = feed(core, plan, sale("D14", midnight(start) + dt.timedelta(hours=10), sold), ended)
    below = signals(outputs, "promotion-below-expectation")
    assert bool(below) is fires
    if fires:
        assert below[0].owner == "Li Na" and below[0].subject == "P-1"
    evaluation = next(o for o in outputs if isinstance(o, PromotionEvaluation))
    assert (evaluation.expected_sales, evaluation.expected_met) == (1000.0, met)


def test_a_promotion_without_expectation_is_not_judged_on_it(core):
    plan = promotion_planned("D15", T0, "P-1")
    outputs = feed(core, plan, event("promotion.ended", "D15", T0 + 40 * DAY, promotion_id="P-1"))
    assert not signals(outputs, "promotion-below-expectation")
    assert next(o for o in outputs if isinstance(o, PromotionEvaluation)).expected_met is None


# --- state ---


def test_the_network_survives_a_store_round_trip(core):
    feed(core, registered("D16", T0), outlet("D16", T0, "O-1"), planned("D16", T0, "PL-1", PLANNED_FOR))
    feed(core, visit_of("D16", T0 + DAY, outlet_id="O-1"), sale("D16", T0 + DAY, outlet_id="O-1"))
    state = core.states["D16"]
    assert from_doc(to_doc(state)) == state
