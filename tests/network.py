"""A dealer network's history for the fault suite: 41 dealers over 120 days, most of them
ordinary (registered, steady sales to their registered outlets, visits that carry out their
plans, monthly targets they meet, approved promotions that pay off as expected), a few with the
abnormal signs the default policy is there to catch. Every event type of the contract occurs."""

from __future__ import annotations

import datetime as dt
import random

from factories import iso

DAY = dt.timedelta(days=1)
DEALERS = 41
DAYS = 120
# dealer index -> its abnormal sign (the others are ordinary)
ANOMALIES = {
    3: "stops-selling",  # dealer-inactive, sales-drop
    7: "sales-drop",
    11: "no-visits",  # visit-overdue
    15: "over-budget",
    19: "unapproved-spend",
    23: "ineffective",
    27: "behind-target",  # target-pace
    31: "fewer-outlets",  # distribution-shrink
    35: "no-leadership-visit",
    39: "over-budget",  # a long Chinese id: 234 bytes
    5: "unregistered",  # unregistered-dealer
    9: "silent-outlet",  # outlet-silent
    13: "below-expectation",  # promotion-below-expectation
    # no-visits (11) also misses its visit plans (planned-visit-missed), fewer-outlets (31) its
    # outlet coverage (distribution-coverage)
}


def dealer_id(index: int) -> str:
    if index == 39:
        return "华东区经销商" * 13  # 78 characters
    return f"D-{index:03d}" if index % 5 else f"经销商-{index:03d}"


def network_history(end: dt.datetime, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    start = end - DAYS * DAY
    events: list[dict] = []
    for index in range(DEALERS):
        events += _dealer(index, start, rng)
    return sorted(events, key=lambda e: e["occurred_at"])


def _event(type_: str, dealer: str, at: dt.datetime, number: list[int], **fields) -> dict:
    number[0] += 1
    return {
        "event_id": f"{dealer[:12]}-{type_}-{number[0]}",
        "type": type_,
        "dealer_id": dealer,
        "occurred_at": iso(at),
        "region": "north" if len(dealer) % 2 else "south",
        **fields,
    }


def _dealer(index: int, start: dt.datetime, rng: random.Random) -> list[dict]:
    dealer, sign, n = dealer_id(index), ANOMALIES.get(index), [0]
    outlets = [f"O-{index}-{k}" for k in range(6)]
    daily = rng.randint(3, 8) * 100  # net sales a day
    events = _network(index, dealer, sign, start, outlets, n)
    for day in range(DAYS):
        moment = start + day * DAY + dt.timedelta(hours=9)
        if sign == "stops-selling" and day >= 92:
            continue
        amount = daily * (0.3 if sign == "sales-drop" and day >= 106 else 1.0)
        active = outlets[:2] if sign == "fewer-outlets" and day >= 80 else outlets
        for k in range(2):
            events.append(
                _event(
                    "sale",
                    dealer,
                    moment + dt.timedelta(hours=3 * k + rng.randint(0, 2)),
                    n,
                    outlet_id=rng.choice(active),
                    sku="JK-9100",
                    quantity=rng.randint(1, 4),
                    amount=f"{amount / 2 + rng.randint(-20, 20):.2f}",
                )
            )
        if day % 12 == 2 and not (sign == "no-visits" and day > 60):
            kind = "routine"
            if day in (2, 74) and sign != "no-leadership-visit":
                kind = "leadership"
            elif day in (14, 98):
                kind = "symposium"
            plan = f"PL-{index}-{day}"
            events.append(
                _event(
                    "visit",
                    dealer,
                    moment + dt.timedelta(hours=5),
                    n,
                    visitor_id=f"rep-{index % 7}",
                    role="executive" if kind == "leadership" else "rep",
                    kind=kind,
                    **({"plan_id": plan} if day % 24 == 2 else {}),  # the others carry it out by kind and day
                )
            )
        if day % 12 == 2:  # every visit is planned a few days before (the no-visits dealer's too)
            kind = "leadership" if day in (2, 74) else "symposium" if day in (14, 98) else "routine"
            events.append(
                _event(
                    "visit.planned",
                    dealer,
                    start + max(day - 3, 0) * DAY + dt.timedelta(hours=8),
                    n,
                    plan_id=f"PL-{index}-{day}",
                    planned_for=moment.date().isoformat(),
                    visitor_id=f"rep-{index % 7}",
                    kind=kind,
                )
            )
    for month_start in sorted({(start + d * DAY).replace(day=1) for d in range(0, DAYS, 10)}):
        first = max(month_start, start)
        days_in_month = 31
        target = daily * days_in_month * (2.0 if sign == "behind-target" else 0.8)
        events.append(
            _event(
                "target.set",
                dealer,
                first + dt.timedelta(hours=1),
                n,
                period=month_start.strftime("%Y-%m"),
                sales_target=f"{target:.0f}",
                active_outlets_target=4,
                # from the second month: in the first, the outlets are only starting to buy
                **({"outlet_coverage_target": "0.5"} if first >= start + 30 * DAY else {}),
            )
        )
    events += _promotion(dealer, sign, start + 50 * DAY, daily, n)
    return events


def _promotion(dealer: str, sign: str | None, planned: dt.datetime, daily: float, n: list[int]) -> list[dict]:
    starts, ends = planned + 5 * DAY, planned + 14 * DAY
    budget = daily * 3
    spend = {"over-budget": budget * 1.2, "ineffective": budget * 0.9}.get(sign, budget * 0.3)
    events = [
        _event(
            "promotion.planned",
            dealer,
            planned,
            n,
            promotion_id=f"P-{n[0]}",
            budget=f"{budget:.2f}",
            starts_on=starts.date().isoformat(),
            ends_on=ends.date().isoformat(),
            owner="王芳",
            expected_sales=f"{daily * 10 * (3.0 if sign == 'below-expectation' else 0.5):.2f}",
        )
    ]
    promotion = events[0]["promotion_id"]
    if sign != "unapproved-spend":
        events.append(_event("promotion.approved", dealer, planned + DAY, n, promotion_id=promotion, approved_by="赵磊"))
    events.append(_event("promotion.spend", dealer, starts + DAY, n, promotion_id=promotion, amount=f"{spend:.2f}"))
    if sign != "ineffective":  # the others sell more during their promotion
        for day in range(10):
            events.append(
                _event(
                    "sale",
                    dealer,
                    starts + day * DAY + dt.timedelta(hours=16),
                    n,
                    sku="JK-9100",
                    quantity=2,
                    amount=f"{daily * 0.6:.2f}",
                )
            )
    events.append(_event("promotion.ended", dealer, ends + 2 * DAY, n, promotion_id=promotion))
    return events


def _network(index: int, dealer: str, sign: str | None, start: dt.datetime, outlets: list[str], n: list[int]) -> list[dict]:
    """The dealer's master data, its outlets, a cancelled visit plan (and the silent outlet)."""
    events = []
    if sign != "unregistered":
        events.append(
            _event(
                "dealer.registered",
                dealer,
                start,
                n,
                name=f"{dealer} 缝纫设备有限公司"[:200],
                contact_name="王经理",
                tier="AB"[index % 2],
            )
        )
        events.append(_event("dealer.updated", dealer, start + 30 * DAY, n, phone="+86 21 5555 0100"))
    for k, outlet in enumerate(outlets + (["O-silent"] if sign == "silent-outlet" else [])):
        level = "sub-distributor" if k < 2 else "retail"
        events.append(
            _event("outlet.registered", dealer, start + dt.timedelta(minutes=k), n, outlet_id=outlet, name=outlet, level=level)
        )
    if index % 4 == 0:  # an outlet that leaves the network (its sales no longer count for coverage)
        events.append(_event("outlet.closed", dealer, start + 60 * DAY, n, outlet_id=outlets[-1]))
    plan = f"PL-{index}-cancelled"
    events.append(
        _event(
            "visit.planned",
            dealer,
            start + 40 * DAY,
            n,
            plan_id=plan,
            planned_for=(start + 45 * DAY).date().isoformat(),
            visitor_id=f"rep-{index % 7}",
            kind="routine",
        )
    )
    events.append(_event("visit.plan_cancelled", dealer, start + 43 * DAY, n, plan_id=plan))
    return events
