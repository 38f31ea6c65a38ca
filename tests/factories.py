"""Builders for v1 events as integrators post them (plain JSON objects), and for the alert
signals rules sends notify."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

from services.common.alerts import AlertSignal

_ids = itertools.count()


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _base(kind: str, dealer: str, at: dt.datetime, event_id: str | None) -> dict:
    return {
        "event_id": event_id or f"ev-{uuid.uuid4().hex[:8]}-{next(_ids)}",
        "type": kind,
        "dealer_id": dealer,
        "occurred_at": iso(at),
    }


def event_base(kind: str, dealer: str, at: dt.datetime, event_id: str | None = None) -> dict:
    """The fields every event has."""
    return _base(kind, dealer, at, event_id)


def dealer_registered(dealer: str, at: dt.datetime, name: str = "华东缝纫设备有限公司", **extra: Any) -> dict:
    return {**_base("dealer.registered", dealer, at, None), "name": name, "contact_name": "王经理", "tier": "A", **extra}


def outlet_registered(dealer: str, at: dt.datetime, outlet_id: str, level: str = "retail", **extra: Any) -> dict:
    base = _base("outlet.registered", dealer, at, None)
    return {**base, "outlet_id": outlet_id, "name": f"网点 {outlet_id}", "level": level, **extra}


def visit_planned(
    dealer: str,
    at: dt.datetime,
    plan_id: str,
    planned_for: dt.date,
    kind: str = "routine",
    outlet_id: str | None = None,
    visitor: str = "rep-7",
) -> dict:
    fields = {"plan_id": plan_id, "planned_for": planned_for.isoformat(), "visitor_id": visitor, "kind": kind}
    return {**_base("visit.planned", dealer, at, None), **fields, **({"outlet_id": outlet_id} if outlet_id else {})}


def network_event(event_type: str, dealer: str, at: dt.datetime, **fields: Any) -> dict:
    """dealer.updated, outlet.closed, visit.plan_cancelled: their fields as given."""
    return {**_base(event_type, dealer, at, None), **fields}


def feedback_received(dealer: str, at: dt.datetime, feedback_id: str, received_by: str | None = "rep-7", **extra: Any) -> dict:
    fields = {"feedback_id": feedback_id, "channel": "symposium", "topic": "交货期", "text": "交货太慢，希望缩短到一周"}
    return {**_base("feedback.received", dealer, at, None), **fields, "received_by": received_by, **extra}


def feedback_answered(dealer: str, at: dt.datetime, feedback_id: str, by: str = "li.na", **extra: Any) -> dict:
    return {**_base("feedback.answered", dealer, at, None), "feedback_id": feedback_id, "by": by, **extra}


def sale(dealer: str, at: dt.datetime, amount: float | str = "100.00", quantity: int = 1, event_id=None, **extra) -> dict:
    return {**_base("sale", dealer, at, event_id), "sku": "JK-9100", "quantity": quantity, "amount": str(amount), **extra}


def visit(dealer: str, at: dt.datetime, kind: str = "routine", event_id=None) -> dict:
    return {**_base("visit", dealer, at, event_id), "visitor_id": "rep-7", "role": "rep", "kind": kind}


def promotion_planned(dealer: str, at: dt.datetime, promotion: str, budget="1000", owner="Wang Fang", event_id=None) -> dict:
    return {
        **_base("promotion.planned", dealer, at, event_id),
        "promotion_id": promotion,
        "budget": str(budget),
        "starts_on": at.date().isoformat(),
        "ends_on": (at.date() + dt.timedelta(days=14)).isoformat(),
        "owner": owner,
    }


def promotion_spend(dealer: str, at: dt.datetime, promotion: str, amount="100", event_id=None) -> dict:
    return {**_base("promotion.spend", dealer, at, event_id), "promotion_id": promotion, "amount": str(amount)}


def promotion_approved(dealer: str, at: dt.datetime, promotion: str, approved_by="Zhao Lei", event_id=None) -> dict:
    event_id = event_id or f"approve-{dealer}-{promotion}"
    return {**_base("promotion.approved", dealer, at, event_id), "promotion_id": promotion, "approved_by": approved_by}


def over_budget(dealer: str, at: dt.datetime, promotion: str = "P-1", region: str | None = None) -> list[dict]:
    """Events that make the default policy raise `promotion-over-budget` (critical): a budget
    of 10, approved, 11 spent; `region`, if given, on each."""
    events = [
        promotion_planned(dealer, at, promotion, budget="10"),
        promotion_approved(dealer, at, promotion),
        promotion_spend(dealer, at, promotion, "11"),
    ]
    return [{**event, "region": region} for event in events] if region else events


def alert_signal(alert_id: str, count: int, state: str = "firing", **changes: Any) -> AlertSignal:
    """The `count`th firing (or the resolve) of a sales-drop alert of dealer D-<alert_id>."""
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=count)
    fields: dict[str, Any] = dict(
        alert_id=alert_id,
        state=state,
        rule_id="sales-drop",
        dealer_id=f"D-{alert_id}",
        severity="warning",
        summary=f"firing {count}",
        details={"measures": {"sales_7d": float(count)}},
        policy_version="abc",
        opened_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        at=at,
        firing_count=count,
    )
    fields.update(changes)
    return AlertSignal(**fields)


def signal(alert_id: str, count: int, state: str = "firing", **changes: Any) -> bytes:
    """The same, as the message body rules publishes."""
    return alert_signal(alert_id, count, state, **changes).model_dump_json().encode()


def feed(core: Any, *events: dict) -> list:
    """Every output of a rules core for these events, in order (an event counted before: none)."""
    from services.common.events import parse_event

    outputs = []
    for event in events:
        outputs.extend(core.handle(parse_event(event)) or [])
    return outputs


def support_dispatched(
    dealer: str,
    at: dt.datetime,
    support_id: str,
    starts_on: dt.date,
    ends_on: dt.date,
    kind: str = "rep",
    cost: float | str = "1000",
    dealer_share: float | str = "0",
    owner: str = "zhao.lei",
    **extra: Any,
) -> dict:
    fields = {
        "support_id": support_id,
        "kind": kind,
        "starts_on": starts_on.isoformat(),
        "ends_on": ends_on.isoformat(),
        "cost": str(cost),
        "dealer_share": str(dealer_share),
        "owner": owner,
    }
    return {**_base("support.dispatched", dealer, at, None), **fields, **extra}


def support_ended(dealer: str, at: dt.datetime, support_id: str) -> dict:
    return {**_base("support.ended", dealer, at, None), "support_id": support_id}
