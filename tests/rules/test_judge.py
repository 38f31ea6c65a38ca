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

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def core():
    core = RulesCore(policy.load("policies/default.yaml"))
    yield core
    core.close()


def broken_for(core, dealer_id: str):
    """Make judging `dealer_id` raise, as a bug or a value the engine refuses would."""
    real = core._judge_dealer

    def judge(state, *args):
        if state.dealer_id == dealer_id:
            raise ArithmeticError("engine refused a value")
        return real(state, *args)

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
    assert any(isinstance(o, AlertSignal) and getattr(o, "rule_id", None) == "promotion-over-budget" for o in outputs)


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
    overdue = {o.dealer_id for o in outputs if getattr(o, "rule_id", None) == "visit-overdue" and o.state == "firing"}
    assert overdue == {"D-1", "D-3"}
    assert list(judge.set_aside) == ["D-2"] and "ArithmeticError: engine refused a value" in judge.set_aside["D-2"].reason
    assert to_doc(core.states["D-2"]) == before  # as it was before the failing tick
    assert judge.advance((T0 + 60 * DAY).timestamp()) is not None and "D-2" in judge.set_aside  # skipped, no retry loop
    mend()
    assert judge.retry_set_aside() == 1  # after a policy reload (or a restart)
    outputs = judge.advance((T0 + 61 * DAY).timestamp())
    assert any(o.dealer_id == "D-2" and getattr(o, "rule_id", None) == "visit-overdue" for o in outputs) and not judge.set_aside


def test_a_dealer_receiving_history_is_held_until_it_went_quiet(core):
    judge = Judge(core, grace=300.0, hold_seconds=60.0)
    wall = (T0 + 100 * DAY).timestamp()
    judge.handle(parse_event(sale("D-H", T0)), arrived=wall)  # 100 days old: history
    judge.handle(parse_event(sale("D-L", T0 + 100 * DAY)), arrived=wall)  # live
    assert core.states["D-H"].hold.until == wall + 60 and core.states["D-L"].hold is None
    assert judge.advance(wall) == []  # the clock does not judge D-H beyond its own events
    assert core.states["D-H"].latest == T0.timestamp()
    judge.handle(parse_event(sale("D-H", T0 + DAY)), arrived=wall + 30)  # more history extends the hold
    assert judge.release_holds(wall + 61) == 0
    assert judge.release_holds(wall + 91) == 1 and core.states["D-H"].hold is None
    outputs = judge.advance(wall)
    assert {o.rule_id for o in outputs if isinstance(o, AlertSignal) and o.dealer_id == "D-H"} >= {
        "dealer-inactive",
        "visit-overdue",
    }


def test_a_held_dealer_follows_its_history_once_it_has_moved_past_it(core):
    """A backfill in time order: a dealer that falls silent is judged as the history goes on,
    as a replay judges it; one whose own history is still ahead of the rest is not."""
    judge = Judge(core, grace=300.0, hold_seconds=3600.0)
    wall = (T0 + 200 * DAY).timestamp()
    judge.handle(parse_event(sale("D-S", T0)), arrived=wall)
    judge.handle(parse_event(visit("D-S", T0)), arrived=wall)
    assert core.states["D-S"].latest == T0.timestamp()
    outputs = []
    for day in range(1, 41):  # another dealer's history goes on; D-S is silent
        outputs += judge.handle(parse_event(sale("D-B", T0 + day * DAY)), arrived=wall + day)[0]
        outputs += judge.follow_histories()  # what the live clock does as the history moves
    inactive = [
        o for o in outputs if o.dealer_id == "D-S" and getattr(o, "rule_id", None) == "dealer-inactive" and o.state == "firing"
    ]
    assert inactive[0].at == T0 + 21 * DAY + dt.timedelta(seconds=1)  # when it became true, as a replay says
    assert core.states["D-S"].latest <= (T0 + 40 * DAY).timestamp() - 300  # never beyond the history, minus the grace
    assert core.states["D-B"].hold is not None and core.states["D-B"].latest == (T0 + 40 * DAY).timestamp()
    # a different history (another source) does not move D-S
    before = core.states["D-S"].latest
    judge.handle(parse_event({**sale("D-O", T0 + 90 * DAY), "source": "erp-2"}), arrived=wall + 50)
    judge.follow_histories()
    assert core.states["D-S"].latest == before


def test_a_dealers_own_deadlines_are_judged_before_its_next_event(core):
    judge = Judge(core)  # nobody advances the clock: a replay, or a held dealer
    judge.handle(parse_event(sale("D-7", T0)))
    judge.handle(parse_event(visit("D-7", T0)))
    outputs, _ = judge.handle(parse_event(visit("D-7", T0 + 40 * DAY)))
    overdue = [(o.state, o.at) for o in outputs if getattr(o, "rule_id", None) == "visit-overdue"]
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


def test_a_backfill_dealer_by_dealer_holds_each_dealer_at_its_own_events(core):
    """History posted one dealer after the other: the history's newest time is already at the
    end when the second dealer's starts, and must not judge it there."""
    judge = Judge(core, grace=300.0, hold_seconds=3600.0)
    wall = (T0 + 200 * DAY).timestamp()
    for number, dealer in enumerate(("D-1", "D-2")):
        for day in range(0, 41, 2):
            outputs, counted = judge.handle(parse_event(sale(dealer, T0 + day * DAY)), arrived=wall + number * 100 + day)
            outputs += judge.follow_histories()
            assert counted  # never too late
            assert not [o for o in outputs if o.dealer_id == dealer and getattr(o, "rule_id", None) == "dealer-inactive"]
    assert core.states["D-2"].latest == (T0 + 40 * DAY).timestamp()


def test_event_ids_are_kept_while_their_messages_may_come_again():
    """Live, a batch of history can span weeks of one dealer; if the process dies after storing
    it and before the broker has its ack, the whole batch comes again and must be recognised."""
    core = RulesCore(policy.load("policies/default.yaml"), forget_ids_when_judging=False)
    events = [parse_event(sale("D-1", T0 + day * DAY)) for day in range(40)]  # one batch
    for event in events:
        core.handle(event)
    core.forget_ids("D-1")  # stored
    assert all(core.handle(event) is None for event in events)  # delivered again: known, counted once
    core.handle(parse_event(sale("D-1", T0 + 41 * DAY)))
    core.forget_ids("D-1")  # the next batch stored: the first one's acks have arrived
    assert core.states["D-1"].events == 41
    assert len(core.states["D-1"].seen_ids) < 41  # now the old ids go
    core.close()


def test_a_batch_publishes_the_first_and_newest_firing_of_each_alert(core):
    """A dealer silent for a year, judged at every midnight in one batch: its alert's hundreds
    of firings become two signals, and notify learns the same (first seen, newest count)."""
    from services.rules.signals import coalesce

    judge = Judge(core)
    judge.handle(parse_event(sale("D-Q", T0)))
    outputs, _ = judge.catch_up("D-Q", (T0 + 365 * DAY).timestamp())
    firings = [o for o in outputs if getattr(o, "rule_id", None) == "dealer-inactive" and o.state == "firing"]
    assert len(firings) > 300
    kept = [o for o in coalesce(outputs) if getattr(o, "rule_id", None) == "dealer-inactive"]
    assert [o.firing_count for o in kept] == [1, firings[-1].firing_count]
    assert kept[0].at == firings[0].at and kept[1].at == firings[-1].at
