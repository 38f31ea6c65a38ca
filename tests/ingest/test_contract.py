"""Event contract v1 and the errors integrators get back."""

from __future__ import annotations

import json

import pytest
from factories import now, promotion_planned, sale, visit
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
        },
    ]
    assert sorted({parse_event(e).type for e in examples}) == sorted(EVENT_TYPES)
    assert parse_event(examples[0]).currency == "CNY"


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
