"""The rules of #24 at their boundaries, through the real core and durable-rules: support judged
when it ends (early, or with its ends_on by the clock), a vehicle's cost shared or not, rebates
within reach (15 days left, a gap of 10% exactly) and gates at risk (with and without targets, a
quarter with a month without one), a promotion behind expectation from half its days exactly."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import feed, network_event, promotion_planned, sale, support_dispatched, support_ended

from services.common.alerts import AlertSignal, DealerStanding, SupportEvaluation
from services.rules.store import from_doc, to_doc

DAY, SECOND = dt.timedelta(days=1), dt.timedelta(seconds=1)


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


def fired(outputs, rule: str, state: str = "firing") -> list[AlertSignal]:
    return [o for o in outputs if isinstance(o, AlertSignal) and o.rule_id == rule and o.state == state]


def evaluations(outputs) -> list[SupportEvaluation]:
    return [o for o in outputs if isinstance(o, SupportEvaluation)]


def target(dealer: str, month: str, amount: str = "100000", when: dt.datetime | None = None) -> dict:
    return network_event(
        "target.set", dealer, when or at("2026-01-01", 1), period=month, sales_target=amount, active_outlets_target=0
    )


# --- support ---


def test_a_support_ended_early_is_judged_then_on_what_it_did(core):
    feed(core, sale("S1", at("2026-02-28"), "400"))
    dispatched = support_dispatched("S1", at("2026-03-01"), "R-1", dt.date(2026, 3, 2), dt.date(2026, 3, 11), cost="2000")
    assert not evaluations(feed(core, dispatched, sale("S1", at("2026-03-03"), "300")))
    outputs = feed(core, support_ended("S1", at("2026-03-05"), "R-1"))
    (evaluation,) = evaluations(outputs)
    assert evaluation.ended_early and evaluation.days == 3.5 and evaluation.verdict == "ineffective"
    assert (evaluation.sales_during, evaluation.sales_before, evaluation.net_cost) == (300, 400, 2000)
    (alert,) = fired(outputs, "support-ineffective")
    assert (alert.subject, alert.owner) == ("R-1", "zhao.lei") and "R-1" in alert.summaries["zh"]
    assert not evaluations(core.tick("S1", dt.datetime(2026, 3, 12, tzinfo=dt.UTC).timestamp()))  # judged once


def test_a_support_not_ended_is_judged_by_the_clock_at_the_end_of_its_ends_on(core):
    dispatched = support_dispatched("S2", at("2026-03-01"), "R-2", dt.date(2026, 3, 2), dt.date(2026, 3, 11), cost="100")
    feed(core, dispatched, sale("S2", at("2026-03-04"), "5000"))
    end = dt.datetime(2026, 3, 12, tzinfo=dt.UTC).timestamp()
    assert core.next_deadline("S2") <= end
    assert not evaluations(core.tick("S2", end - 1))
    (evaluation,) = evaluations(outputs := core.tick("S2", end))
    assert not evaluation.ended_early and evaluation.days == 10 and evaluation.ratio == 50.0
    assert evaluation.verdict == "effective" and not fired(outputs, "support-ineffective")


@pytest.mark.parametrize(
    ("kind", "share", "cost", "fires"),
    [("vehicle", "0", "500", True), ("vehicle", "0.01", "500", False), ("vehicle", "0", "0", False), ("rep", "0", "500", False)],
)
def test_a_vehicle_whose_cost_the_dealer_shares_none_of(core, kind, share, cost, fires):
    event = support_dispatched(
        "S3", at("2026-03-01"), "V-1", dt.date(2026, 3, 2), dt.date(2026, 3, 3), kind=kind, cost=cost, dealer_share=share
    )
    assert bool(fired(feed(core, event), "vehicle-cost-unshared")) is fires


def test_supports_survive_a_store_round_trip_and_a_running_one_is_in_the_standing(core):
    outputs = feed(core, support_dispatched("S4", at("2026-03-02"), "R-4", dt.date(2026, 3, 2), dt.date(2026, 3, 5)))
    (standing,) = [o for o in outputs if isinstance(o, DealerStanding)]
    assert standing.running is not None and (standing.running.support_id, standing.running.days_left) == ("R-4", 4)
    state = core.states["S4"]
    assert from_doc(to_doc(state)) == state and to_doc(state)["counts"]["supports"] == 1


# --- incentives: quarterly-rebate (tiers from 300,000 and 500,000, gate 0.9) ---


@pytest.mark.parametrize(
    ("day", "amount", "fires"),
    [("2026-03-16", "270000", True), ("2026-03-16", "269999", False), ("2026-03-15", "270000", False)],
)
def test_the_next_tier_within_reach_with_15_days_left(core, day, amount, fires):
    outputs = feed(core, sale("I1", at(day, 1), amount))  # Q1 ends on March 31: 15 days after March 16
    assert bool(fired(outputs, "rebate-tier-within-reach")) is fires


def test_the_clock_raises_it_the_day_15_days_are_left_and_the_tier_reached_resolves_it(core):
    feed(core, sale("I2", at("2026-03-15"), "280000"))
    (alert,) = fired(core.tick("I2", dt.datetime(2026, 3, 16, tzinfo=dt.UTC).timestamp()), "rebate-tier-within-reach")
    assert alert.subject == "quarterly-rebate@2026-Q1" and "20,000.00" in alert.summary
    assert fired(feed(core, sale("I2", at("2026-03-17"), "20000")), "rebate-tier-within-reach", "resolved")


def test_the_gate_at_risk_from_half_the_quarter_with_targets(core):
    feed(core, target("I3", "2026-01"), target("I3", "2026-02"), target("I3", "2026-03"))
    assert not fired(feed(core, sale("I3", at("2026-02-13"), "1000")), "rebate-gate-at-risk")  # 44 of 90 days
    (alert,) = fired(core.tick("I3", dt.datetime(2026, 2, 14, tzinfo=dt.UTC).timestamp()), "rebate-gate-at-risk")
    assert alert.details["measures"]["incentive_gate_target"] == 270000 and "270,000.00" in alert.summaries["en"]


def test_no_gate_without_targets_and_accrual_then_follows_the_tier(core):
    outputs = feed(core, sale("I4", at("2026-02-20"), "310000"))
    assert not fired(outputs, "rebate-gate-at-risk")
    (program,) = __import__("services.rules.incentives", fromlist=["view"]).view(
        core.states["I4"], core.policy.spec.incentives, at("2026-02-20").timestamp(), core.policy.calendar
    )
    assert (program["rate"], program["accrued"], program["gate_target"], program["next_gap"]) == (0.02, 6200.0, None, 190000)


def test_a_quarter_with_a_month_without_a_target_gates_on_the_targets_set(core):
    feed(core, target("I5", "2026-01"), target("I5", "2026-02"))  # none for March
    assert not fired(feed(core, sale("I5", at("2026-02-14", 1), "100000")), "rebate-gate-at-risk")  # 200,000 projected >= 180,000
    outputs = feed(core, target("I5", "2026-03", when=at("2026-02-14", 2)))
    (alert,) = fired(outputs, "rebate-gate-at-risk")
    assert alert.details["measures"]["incentive_gate_target"] == 270000


# --- promotion-behind-expectation ---


def planned(dealer: str) -> dict:
    event = promotion_planned(dealer, at("2026-03-01"), "P-1")
    return {**event, "starts_on": "2026-03-02", "ends_on": "2026-03-11", "expected_sales": "10000"}


def test_behind_expectation_from_half_its_days_exactly(core):
    feed(core, planned("P1"), sale("P1", at("2026-03-06"), "100"))  # 4 of 10 days gone: not yet
    assert not fired(core.tick("P1", dt.datetime(2026, 3, 6, 23, tzinfo=dt.UTC).timestamp()), "promotion-behind-expectation")
    (alert,) = fired(core.tick("P1", dt.datetime(2026, 3, 7, tzinfo=dt.UTC).timestamp()), "promotion-behind-expectation")
    assert (alert.subject, alert.owner) == ("P-1", "Wang Fang") and "50%" in alert.summary
    assert not fired(feed(core, sale("P1", at("2026-03-07", 1), "2399.99")), "promotion-behind-expectation", "resolved")
    assert fired(feed(core, sale("P1", at("2026-03-07", 2), "0.01")), "promotion-behind-expectation", "resolved")  # 2,500


def test_behind_expectation_resolves_when_the_promotion_ends(core):
    feed(core, planned("P2"))
    assert fired(core.tick("P2", dt.datetime(2026, 3, 8, tzinfo=dt.UTC).timestamp()), "promotion-behind-expectation")
    ended = feed(core, network_event("promotion.ended", "P2", at("2026-03-09"), promotion_id="P-1"))
    assert fired(ended, "promotion-behind-expectation", "resolved")
    assert fired(ended, "promotion-below-expectation")  # the end is judged by the rule of its end
