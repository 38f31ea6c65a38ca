"""Property tests over the contract: any event an integrator may post (unicode ids up to the
limit, unrounded and extreme amounts, counts and dates at the bounds) goes through ingest's parser,
the message body, the rules core and every routing key without an error the contract does not
name, and every alert signal it raises reaches notify as it was sent."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as count_case
from hypothesis import strategies as st

from services.common.alerts import AlertSignal
from services.common.events import AMOUNT_DIGITS, EARLIEST, LATEST, MAX_AMOUNT, MAX_COUNT, parse_event
from services.common.topology import SHORTSTR_BYTES, alert_routing_key, event_routing_key
from services.ingest.parsing import parse_body
from services.rules.core import RulesCore, TooLate

UTC = dt.UTC
_dealers = itertools.count()

# any character the contract allows (no C0 controls, no lone surrogates JSON cannot carry)
text_chars = st.characters(min_codepoint=0x20, blacklist_categories=("Cs",))
ids = st.one_of(
    st.text(text_chars, min_size=1, max_size=128),
    st.just("经销商" * 42 + "店"),  # 127 characters, 379 bytes: longer than a routing key may be
    st.just("a.b*c#d" * 18),  # the topic exchange's own characters
)


def amounts(*, positive: bool = False) -> st.SearchStrategy[str]:
    low = Decimal("0.01") if positive else -MAX_AMOUNT
    edges = [MAX_AMOUNT, Decimal("0.000000000000001"), Decimal("123456789012.345")]
    numbers = st.one_of(
        st.decimals(min_value=low, max_value=MAX_AMOUNT, allow_nan=False, allow_infinity=False, places=None),
        st.sampled_from([e for e in edges if e >= low] + ([-MAX_AMOUNT] if not positive else [])),
    )
    return numbers.filter(lambda d: not d or len(d.normalize().as_tuple().digits) <= AMOUNT_DIGITS).map(str)


moments = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None), max_value=(LATEST - dt.timedelta(days=2)).replace(tzinfo=None)
).map(lambda m: m.replace(tzinfo=UTC))
counts = st.one_of(st.integers(-MAX_COUNT, MAX_COUNT).filter(bool), st.sampled_from([MAX_COUNT, -MAX_COUNT, 1, -1]))


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


KINDS = ["sale", "visit", "promotion.planned", "promotion.approved", "promotion.spend", "target.set"]


def fields_of(draw, kind: str, at: dt.datetime, promotion: str) -> dict:
    day = at.date().isoformat()
    if kind == "sale":
        return {"sku": draw(ids), "quantity": draw(counts), "amount": draw(amounts()), "outlet_id": draw(ids)}
    if kind == "visit":
        return {"visitor_id": draw(ids), "role": "rep", "kind": draw(st.sampled_from(["routine", "leadership"]))}
    if kind == "promotion.planned":
        budget = draw(amounts(positive=True))
        return {"promotion_id": promotion, "budget": budget, "starts_on": day, "ends_on": day, "owner": draw(ids)}
    if kind == "promotion.approved":
        return {"promotion_id": promotion, "approved_by": draw(ids)}
    if kind == "promotion.spend":
        return {"promotion_id": promotion, "amount": draw(amounts(positive=True))}
    sales_target, outlets = draw(amounts(positive=True)), draw(st.integers(0, MAX_COUNT))
    return {"period": f"{at:%Y-%m}", "sales_target": sales_target, "active_outlets_target": outlets}


@st.composite
def histories(draw) -> list[dict]:
    """1 to 6 events of one dealer, of any type, around one moment (the lateness bound allows them)."""
    dealer, start, promotion = draw(ids), draw(moments), draw(ids)
    events = []
    for n in range(draw(st.integers(1, 6))):
        at = start + dt.timedelta(seconds=draw(st.integers(0, 86_400)))
        base = {"event_id": f"{n}-{draw(ids)}"[:128], "dealer_id": dealer, "occurred_at": iso(at)}
        if draw(st.booleans()):
            base["region"] = draw(st.text(text_chars, min_size=1, max_size=64))
        kind = draw(st.sampled_from(KINDS))
        events.append({**base, "type": kind, **fields_of(draw, kind, at, promotion)})
    return events


@pytest.fixture(scope="module")
def module_core(default_policy):
    core = RulesCore(default_policy)
    yield core
    core.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(histories())
def test_any_valid_event_goes_through_ingest_rules_and_routing_as_the_contract_says(module_core, history):
    window = (EARLIEST, LATEST)
    events = parse_body(json.dumps(history, ensure_ascii=False).encode(), "application/json", 1000, window)
    # a history of its own (the generated dealer ids may repeat between examples)
    suffix = f"#{next(_dealers)}"
    events = [e.model_copy(update={"dealer_id": e.dealer_id[: 128 - len(suffix)] + suffix}) for e in events]
    for event in sorted(events, key=lambda e: e.occurred_at):
        key = event_routing_key(event.type, event.dealer_id, 32)
        assert len(key.encode()) <= SHORTSTR_BYTES and key.startswith("p") and key.split(".")[1] == event.type.split(".")[0]
        body = event.model_dump_json(exclude_none=True)  # what ingest publishes, what rules reads
        assert parse_event(body) == event
        try:
            outputs = module_core.handle(event) or []
        except TooLate:
            continue  # refused with its reason (dead-lettered): the contract's lateness bound
        later = event.occurred_at.timestamp() + 40 * 86_400
        outputs += module_core.tick(event.dealer_id, later)
        for output in outputs:
            count_case(f"raised {type(output).__name__}")
            if isinstance(output, AlertSignal):
                assert len(alert_routing_key(output.severity, output.rule_id, output.dealer_id).encode()) <= SHORTSTR_BYTES
                assert AlertSignal.model_validate_json(output.model_dump_json()) == output  # as notify reads it
