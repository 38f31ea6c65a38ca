"""Every event is counted once: a retried event of any type (same event_id) changes nothing, and a
new event with the same content but its own id is counted again (the id, not the content, is the
key)."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import (
    dealer_registered,
    feedback_answered,
    feedback_received,
    network_event,
    outlet_registered,
    promotion_approved,
    promotion_planned,
    promotion_spend,
    sale,
    support_dispatched,
    support_ended,
    visit,
    visit_planned,
)

from services.common.events import parse_event
from services.rules.core import TooLate
from services.rules.store import to_doc

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DEALER = "D-dup"


def one_of_each_type() -> list[dict]:
    at = T0 + dt.timedelta(hours=1)
    return [
        dealer_registered(DEALER, at),
        network_event("dealer.updated", DEALER, at, tier="B"),
        outlet_registered(DEALER, at, "O-1"),
        network_event("outlet.closed", DEALER, at, outlet_id="O-1"),
        visit_planned(DEALER, at, "V-1", (at + dt.timedelta(days=3)).date()),
        network_event("visit.plan_cancelled", DEALER, at, plan_id="V-1"),
        sale(DEALER, at, "250.00", 2),
        visit(DEALER, at),
        promotion_planned(DEALER, at, "P-1", budget="1000"),
        promotion_approved(DEALER, at, "P-1"),
        promotion_spend(DEALER, at, "P-1", "300"),
        network_event("promotion.ended", DEALER, at, promotion_id="P-1"),
        network_event("target.set", DEALER, at, period="2026-03", sales_target="5000", active_outlets_target=3),
        feedback_received(DEALER, at, "FB-1"),
        feedback_answered(DEALER, at, "FB-1"),
        support_dispatched(DEALER, at, "S-1", at.date(), (at + dt.timedelta(days=3)).date(), kind="vehicle"),
        support_ended(DEALER, at, "S-1"),
    ]


def test_the_fixture_has_every_event_type():
    from typing import get_args

    from services.common.events import Event

    union = get_args(Event)[0]
    types = {get_args(model.model_fields["type"].annotation)[0] for model in get_args(union)}
    assert {event["type"] for event in one_of_each_type()} == types


@pytest.mark.parametrize("event", one_of_each_type(), ids=lambda event: event["type"])
def test_a_retried_event_of_any_type_is_recognised_and_changes_nothing(core, event):
    # a history before it, so that the event has something to change
    assert core.handle(parse_event(sale(DEALER, T0, "100.00"))) is not None
    first = core.handle(parse_event(event))
    assert first is not None, "a new event must be counted"
    t = (T0 + dt.timedelta(hours=2)).timestamp()
    state_after_first = to_doc(core.states[DEALER])
    measures = core.measures(DEALER, t)

    assert core.handle(parse_event(event)) is None, f"a retried {event['type']} was counted again"
    assert core.measures(DEALER, t) == measures
    assert to_doc(core.states[DEALER]) == state_after_first  # series, promotions, outlets, plans, ids, events


def test_a_retry_is_recognised_while_it_can_arrive_and_refused_as_too_late_after(core, default_policy):
    lateness = dt.timedelta(seconds=default_policy.lateness)
    first = sale(DEALER, T0, "100.00")
    assert core.handle(parse_event(first)) is not None
    # the dealer moves on to just inside the lateness bound of the first event
    assert core.handle(parse_event(sale(DEALER, T0 + lateness - dt.timedelta(minutes=1), "5.00"))) is not None
    counted = core.states[DEALER].events
    assert core.handle(parse_event(first)) is None  # still recognised: not counted again
    assert core.states[DEALER].events == counted
    # far later: the id is forgotten, and the retry is refused by the bound, never counted
    assert core.handle(parse_event(sale(DEALER, T0 + 3 * lateness, "5.00"))) is not None
    with pytest.raises(TooLate):
        core.handle(parse_event(first))
    assert core.states[DEALER].events == counted + 1


def test_a_state_forgets_what_no_window_or_bound_can_reach_again(core, default_policy):
    """Bounded state (docs/performance.md: a few KB a dealer): ids past the lateness bound, sales
    past every window, promotions ended 90 days ago are dropped when the dealer is judged later."""
    for event in one_of_each_type():
        core.handle(parse_event(event))
    state = core.states[DEALER]
    assert state.seen_ids and state.series and state.promotions
    core.tick(DEALER, (T0 + dt.timedelta(days=400)).timestamp())
    state = core.states[DEALER]
    assert len(state.seen_ids) == len(state.seen_times) == 0
    assert all(len(series.times) == 0 for series in state.series.values())
    assert state.promotions == {}


def test_a_dealer_with_many_recent_events_still_recognises_each_retry(core):
    """Past a few dozen ids a dealer looks them up in a set (#22: a scan per event was quadratic):
    it knows the ids counted before and after it was built, and forgets none it must keep."""
    events = [sale(DEALER, T0 + dt.timedelta(minutes=n), "1.00") for n in range(200)]
    for event in events[:100]:
        assert core.handle(parse_event(event)) is not None
    for event in events[:100:7]:
        assert core.handle(parse_event(event)) is None  # known: the set is built from the ids
    for event in events[100:]:
        assert core.handle(parse_event(event)) is not None
        assert core.handle(parse_event(event)) is None  # known at once: the set follows the ids
    assert core.states[DEALER].events == 200
