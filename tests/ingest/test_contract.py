"""Event contract v1 and the errors integrators get back."""

from __future__ import annotations

import json

import pytest
from factories import (
    dealer_registered,
    feedback_answered,
    feedback_received,
    network_event,
    now,
    outlet_registered,
    promotion_planned,
    sale,
    support_dispatched,
    support_ended,
    visit,
    visit_planned,
)
from pydantic import ValidationError

from services.common.events import EVENT_TYPES, parse_event
from services.ingest.parsing import InvalidBatch, parse_body


def errors_of(body, content_type="application/json", limit=1000) -> list[dict]:
    with pytest.raises(InvalidBatch) as caught:
        parse_body(body if isinstance(body, bytes) else json.dumps(body).encode(), content_type, limit)
    return [e.as_dict() for e in caught.value.errors]


def test_every_type_in_the_contract_parses():
    at = now()
    examples = [
        sale("D1", at, outlet_id="O-1"),
        visit("D1", at, kind="symposium"),
        promotion_planned("D1", at, "P1"),
        {
            "event_id": "a",
            "type": "promotion.approved",
            "dealer_id": "D1",
            "occurred_at": "2026-03-01T08:00:00+08:00",
            "promotion_id": "P1",
            "approved_by": "boss",
        },
        {
            "event_id": "b",
            "type": "promotion.spend",
            "dealer_id": "D1",
            "occurred_at": "2026-03-01T08:00:00Z",
            "promotion_id": "P1",
            "amount": 12.5,
        },
        {
            "event_id": "c",
            "type": "promotion.ended",
            "dealer_id": "D1",
            "occurred_at": "2026-03-01T08:00:00Z",
            "promotion_id": "P1",
        },
        {
            "event_id": "d",
            "type": "target.set",
            "dealer_id": "D1",
            "occurred_at": "2026-03-01T08:00:00Z",
            "period": "2026-03",
            "sales_target": "100000",
            "active_outlets_target": 12,
            "outlet_coverage_target": "0.8",
        },
        dealer_registered("D1", at, region="华东", phone="+86 21 5555-0101"),
        network_event("dealer.updated", "D1", at, tier="B"),
        outlet_registered("D1", at, "O-1", level="sub-distributor", region="苏州"),
        network_event("outlet.closed", "D1", at, outlet_id="O-1"),
        visit_planned("D1", at, "PL-1", at.date(), kind="leadership", outlet_id="O-1"),
        network_event("visit.plan_cancelled", "D1", at, plan_id="PL-1"),
        {**visit("D1", at), "plan_id": "PL-1"},
        {**promotion_planned("D1", at, "P2"), "expected_sales": "50000"},
        feedback_received("D1", at, "FB-1"),
        feedback_answered("D1", at, "FB-1", text="已安排华东仓直发"),
        support_dispatched("D1", at, "S-1", at.date(), at.date(), kind="promoter", dealer_share="0.3", reason="促销员驻店"),
        support_ended("D1", at, "S-1"),
    ]
    assert sorted({parse_event(e).type for e in examples}) == sorted(EVENT_TYPES)
    assert parse_event(examples[0]).currency == "CNY"


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        (network_event("dealer.updated", "D1", now()), None, "at least one of name"),
        ({**dealer_registered("D1", now()), "name": ""}, "name", "at least 1 character"),
        ({**dealer_registered("D1", now()), "tier": "x" * 33}, "tier", "at most 32"),
        ({**dealer_registered("D1", now()), "phone": "call me"}, "phone", "pattern"),
        (outlet_registered("D1", now(), "O-1", level="wholesale"), "level", "sub-distributor"),
        ({**visit_planned("D1", now(), "PL-1", now().date()), "kind": "party"}, "kind", "routine"),
        ({**visit_planned("D1", now(), "PL-1", now().date()), "planned_for": "2100-01-01"}, "planned_for", "2100"),
        ({**promotion_planned("D1", now(), "P1"), "expected_sales": "0"}, "expected_sales", "greater than 0"),
        (
            {
                **network_event("target.set", "D1", now(), period="2026-03", sales_target="1", active_outlets_target=1),
                "outlet_coverage_target": "1.01",
            },
            "outlet_coverage_target",
            "share from 0 to 1",
        ),
    ],
)
def test_network_events_refused_with_the_field_named(event, field, words):
    [error] = errors_of([event])
    assert error["index"] == 0 and error["field"] == field and words in error["message"]


def test_unknown_type_and_unknown_field_are_named():
    at = now()
    typo = dict(sale("D1", at), amout="5")
    errors = errors_of([{"event_id": "x", "type": "sael", "dealer_id": "D", "occurred_at": "2026-01-01T00:00:00Z"}, typo])
    assert errors[0]["index"] == 0 and errors[0]["field"] == "type" and "sael" in errors[0]["message"]
    assert {"index": 1, "field": "amout", "message": "unknown field 'amout' (not part of this event type)"} in errors


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),  # no offset
        ({"currency": "yuan"}, "currency"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"amount": "NaN"}, "amount"),
    ],
)
def test_invalid_values_point_at_their_field(change, field):
    errors = errors_of([dict(sale("D1", now()), **change)])
    assert [(e["index"], e["field"]) for e in errors] == [(0, field)]


def test_promotion_rules():
    at = now()
    assert errors_of(dict(promotion_planned("D", at, "P"), budget="0"))[0]["field"] == "budget"
    bad_dates = dict(promotion_planned("D", at, "P"), starts_on="2026-05-02", ends_on="2026-05-01")
    assert errors_of(bad_dates)[0]["field"] == "ends_on"


def test_ndjson_and_limits():
    at = now()
    body = "\n".join(json.dumps(sale("D1", at)) for _ in range(3)) + "\n\n"
    assert len(parse_body(body.encode(), "application/x-ndjson", 1000)) == 3
    broken = (json.dumps(sale("D1", at)) + "\n{not json\n").encode()
    assert errors_of(broken, "application/x-ndjson")[0]["index"] == 1
    assert "limit is 2" in errors_of([sale("D1", at)] * 3, limit=2)[0]["message"]
    assert "no events" in errors_of([])[0]["message"]
    assert "invalid JSON" in errors_of(b"{")[0]["message"]


def test_canonical_message_round_trips():
    event = parse_event(sale("D1", now(), "-12.30", quantity=-1))
    assert parse_event(event.model_dump_json(exclude_none=True)) == event
    with pytest.raises(ValidationError):
        parse_event(b'{"type": "sale"}')
