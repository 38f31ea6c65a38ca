"""Every event is counted once: a retried event of any type (same event_id) changes nothing, and a
new event with the same content but its own id is counted again (the id, not the content, is the
key)."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import (
    dealer_registered,
    network_event,
    outlet_registered,
    promotion_approved,
    promotion_planned,
    promotion_spend,
    sale,
    visit,
    visit_planned,
)

from services.common.events import parse_event

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
    state_after_first = core.states[DEALER].copy()
    measures = core.measures(DEALER, t)

    assert core.handle(parse_event(event)) is None, f"a retried {event['type']} was counted again"
    assert core.measures(DEALER, t) == measures
    assert core.states[DEALER].events == state_after_first.events
    assert core.states[DEALER] == state_after_first  # series, promotions, outlets, plans, ids
