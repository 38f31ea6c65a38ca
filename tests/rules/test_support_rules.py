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


# --- what the mutants found untested (tests/mutation: rules/support.py, rules/incentives.py) ---


def test_the_cost_the_manufacturer_bears_is_its_share_and_the_verdict_stays_once_judged(core):
    feed(core, sale("S5", at("2026-02-20"), "700"), sale("S5", at("2026-02-27"), "400"))  # S: the 4 days before only
    dispatched = support_dispatched(
        "S5", at("2026-03-01"), "R-5", dt.date(2026, 3, 2), dt.date(2026, 3, 5), cost="2000", dealer_share="0.25"
    )
    feed(core, dispatched, sale("S5", at("2026-03-03"), "1000"))
    (evaluation,) = evaluations(core.tick("S5", dt.datetime(2026, 3, 6, tzinfo=dt.UTC).timestamp()))
    assert (evaluation.net_cost, evaluation.sales_during, evaluation.sales_before) == (1500, 1000, 400)
    assert evaluation.ratio == (1000 - 400) / 1500
    feed(core, sale("S5", at("2026-03-04"), "900"))  # late, within the lateness: counted, the verdict stays
    from services.rules import support

    kept = support.measures(
        core.states["S5"].supports["R-5"], core.states["S5"], at("2026-03-07").timestamp(), core.policy.calendar
    )
    assert (kept["support_sales"], kept["support_net_effect"]) == (1000, 600)


def test_support_runs_from_the_start_of_its_first_day_to_the_end_of_its_last(core):
    future = support_dispatched("S6", at("2026-03-01"), "R-6", dt.date(2026, 3, 2), dt.date(2026, 3, 3))
    standings = [o for o in feed(core, future) if isinstance(o, DealerStanding)]
    assert standings[-1].running is None  # not started yet
    started = [o for o in core.tick("S6", dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()) if isinstance(o, DealerStanding)]
    assert started[-1].running is not None and started[-1].running.days_left == 2
    ended = core.tick("S6", dt.datetime(2026, 3, 4, tzinfo=dt.UTC).timestamp())
    assert [o for o in ended if isinstance(o, DealerStanding)][-1].running is None and evaluations(ended)


def test_a_failed_judgement_leaves_the_months_as_they_were(core):
    feed(core, target("I6", "2026-02", when=at("2026-02-19")), sale("I6", at("2026-02-20"), "1000"))
    state = core.states["I6"]
    before = (dict(state.month_sales), dict(state.month_targets))
    real = core._judge_dealer

    def broken(*args):
        raise ArithmeticError("engine refused a value")

    core._judge_dealer = broken
    with pytest.raises(ArithmeticError):
        feed(core, sale("I6", at("2026-02-21"), "5000"), target("I6", "2026-02", "1", when=at("2026-02-21")))
    with pytest.raises(ArithmeticError):
        feed(core, target("I6", "2026-02", "1", when=at("2026-02-21")))
    core._judge_dealer = real
    assert (state.month_sales, state.month_targets) == before


def test_a_sale_crossing_into_reach_is_judged_at_once_and_the_latest_target_counts(core):
    feed(core, sale("I7", at("2026-03-20", 1), "260000"))
    (alert,) = fired(feed(core, sale("I7", at("2026-03-20", 9), "10000")), "rebate-tier-within-reach")  # the same day
    assert alert.at == at("2026-03-20", 9)
    feed(core, target("I8", "2026-01", "500000", when=at("2026-01-05")), target("I8", "2026-01", "100000", when=at("2026-01-05")))
    assert core.states["I8"].month_targets["2026-01"][1] == 100000  # the same time: the one posted later


def test_sales_exactly_at_the_gate_are_paid_and_a_month_program_ends_with_its_month(core):
    from services.rules import incentives
    from services.rules.spec import IncentiveSpec

    feed(core, target("I9", "2026-02", "100000"), sale("I9", at("2026-02-10"), "90000"))
    monthly = IncentiveSpec.model_validate({"id": "m", "period": "month", "tiers": [{"from": 50000, "rate": 0.01}], "gate": 0.9})
    period = incentives.period_of(dt.date(2026, 2, 10), "month")
    assert (period.first, period.last) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    values = incentives.measures(core.states["I9"], monthly, period, dt.date(2026, 2, 10))
    assert values["incentive_gate_target"] == 90000 and values["incentive_accrued"] == 900
    assert values["incentive_days_left"] == 18 and values["incentive_elapsed"] == 10 / 28
