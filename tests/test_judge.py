"""The judge without a broker: judgements are all or nothing, a dealer whose judgement fails is
set aside while the others go on, held dealers wait for their history, and a dealer's own
deadlines are judged before its next event."""

from __future__ import annotations

import datetime as dt

import pytest

from factories import promotion_planned, promotion_spend, sale, visit
from services.common.alerts import AlertSignal
from services.common.events import parse_event
from services.rules import policy
from services.rules.core import RulesCore
from services.rules.judge import Judge, Refused
from services.rules.store import to_doc

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


@pytest.fixture
def core():
    core = RulesCore(policy.load("policies/default.yaml"))
    yield core
    core.close()


def broken_for(core, dealer_id: str):
    """Make judging `dealer_id` raise, as a bug or a value the engine refuses would."""
    real = core._judge_dealer

    def judge(state, t, trigger):
        if state.dealer_id == dealer_id:
            raise ArithmeticError("engine refused a value")
        return real(state, t, trigger)

    core._judge_dealer = judge
    return lambda: setattr(core, "_judge_dealer", real)


def test_an_event_whose_judgement_fails_leaves_the_dealer_as_it_was(core):
    judge = Judge(core)
    judge.handle(parse_event(promotion_planned("D-1", T0, "P-1", budget="100")))
    before = to_doc(core.states["D-1"])
    spend = parse_event(promotion_spend("D-1", T0, "P-1", "150", event_id="s-1"))
    mend = broken_for(core, "D-1")
    with pytest.raises(Refused) as refused:
        judge.handle(spend)
    assert isinstance(refused.value.cause, ArithmeticError)
    assert to_doc(core.states["D-1"]) == before  # not counted: no spend, no seen id
    mend()
    outputs, counted = judge.handle(spend)  # the retry counts it, once
    assert counted and core.states["D-1"].promotions["P-1"].spend == 150
    assert any(isinstance(o, AlertSignal) and o.rule_id == "promotion-over-budget" for o in outputs)


def test_a_new_dealer_whose_first_judgement_fails_is_not_created(core):
    mend = broken_for(core, "D-9")
    with pytest.raises(Refused):
        Judge(core).handle(parse_event(sale("D-9", T0)))
    assert "D-9" not in core.states
    mend()


def test_a_dealer_whose_tick_fails_is_set_aside_and_the_others_keep_their_deadlines(core):
    judge = Judge(core)
    for dealer in ("D-1", "D-2", "D-3"):
        judge.handle(parse_event(sale(dealer, T0)))
        judge.handle(parse_event(visit(dealer, T0)))
    before = to_doc(core.states["D-2"])
    mend = broken_for(core, "D-2")
    outputs = judge.advance((T0 + 31 * DAY).timestamp())
    overdue = {o.dealer_id for o in outputs if o.rule_id == "visit-overdue" and o.state == "firing"}
    assert overdue == {"D-1", "D-3"}
    assert list(judge.set_aside) == ["D-2"] and "ArithmeticError: engine refused a value" in judge.set_aside["D-2"].reason
    assert to_doc(core.states["D-2"]) == before  # as it was before the failing tick
    assert judge.advance((T0 + 60 * DAY).timestamp()) is not None and "D-2" in judge.set_aside  # skipped, no retry loop
    mend()
    assert judge.retry_set_aside() == 1  # after a policy reload (or a restart)
    outputs = judge.advance((T0 + 61 * DAY).timestamp())
    assert any(o.dealer_id == "D-2" and o.rule_id == "visit-overdue" for o in outputs) and not judge.set_aside


def test_a_dealer_receiving_history_is_held_until_it_went_quiet(core):
    judge = Judge(core, grace=300.0, hold_seconds=60.0)
    wall = (T0 + 100 * DAY).timestamp()
    judge.handle(parse_event(sale("D-H", T0)), arrived=wall)  # 100 days old: history
    judge.handle(parse_event(sale("D-L", T0 + 100 * DAY)), arrived=wall)  # live
    assert core.states["D-H"].hold_until == wall + 60 and core.states["D-L"].hold_until is None
    assert judge.advance(wall) == []  # the clock does not judge D-H beyond its own events
    assert core.states["D-H"].latest == T0.timestamp()
    judge.handle(parse_event(sale("D-H", T0 + DAY)), arrived=wall + 30)  # more history extends the hold
    assert judge.release_holds(wall + 61) == 0
    assert judge.release_holds(wall + 91) == 1 and core.states["D-H"].hold_until is None
    outputs = judge.advance(wall)
    assert {o.rule_id for o in outputs if o.dealer_id == "D-H"} >= {"dealer-inactive", "visit-overdue"}


def test_a_dealers_own_deadlines_are_judged_before_its_next_event(core):
    judge = Judge(core)  # nobody advances the clock: a replay, or a held dealer
    judge.handle(parse_event(sale("D-7", T0)))
    judge.handle(parse_event(visit("D-7", T0)))
    outputs, _ = judge.handle(parse_event(visit("D-7", T0 + 40 * DAY)))
    overdue = [(o.state, o.at) for o in outputs if o.rule_id == "visit-overdue"]
    assert overdue[0] == ("firing", T0 + 30 * DAY + dt.timedelta(seconds=1))  # at its exact time
    assert overdue[-1] == ("resolved", T0 + 40 * DAY)
    assert [at for _, at in overdue] == sorted(at for _, at in overdue)


def test_an_event_dated_ahead_moves_only_its_own_dealer(core):
    judge = Judge(core)
    judge.handle(parse_event(sale("D-1", T0)))
    judge.handle(parse_event(sale("D-2", T0 + 365 * DAY)))
    assert core.states["D-1"].latest == T0.timestamp()
    judge.handle(parse_event(sale("D-1", T0 + DAY)))  # not too late: D-1 was not moved
    assert core.states["D-1"].events == 2
