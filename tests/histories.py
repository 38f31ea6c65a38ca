"""Event histories for tests that compare the live stack with `dealerwatch backtest`."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import uuid

import httpx
from factories import (
    dealer_registered,
    iso,
    network_event,
    now,
    outlet_registered,
    promotion_planned,
    promotion_spend,
    sale,
    visit,
    visit_planned,
)

from services.rules import policy
from services.rules.backtest import backtest

DAY = dt.timedelta(days=1)


def history(end: dt.datetime, dealers: int = 6, days: int = 80, seed: int = 11) -> list[dict]:
    """A few dealers' sales, visits, targets and promotions ending at `end`, in time order."""
    rng = random.Random(seed)
    start = end - days * DAY
    events = []
    for d in range(dealers):
        dealer = f"H-{d}"
        for day in range(days):
            at = start + day * DAY + dt.timedelta(hours=rng.randint(1, 20), minutes=rng.randint(0, 59))
            if day < days - 25 or d % 2:
                events.append(
                    sale(
                        dealer, at, rng.randint(150, 450) if day < days - 12 or d % 3 else 20, outlet_id=f"O-{rng.randint(1, 4)}"
                    )
                )
            if day % (9 + 4 * d) == 0:
                events.append(
                    visit(dealer, at + dt.timedelta(minutes=1), kind=rng.choice(["routine", "leadership", "symposium"]))
                )
        month = (start + 40 * DAY).strftime("%Y-%m")
        events.append(
            {
                "event_id": f"t-{dealer}",
                "type": "target.set",
                "dealer_id": dealer,
                "occurred_at": iso(start + 30 * DAY),
                "period": month,
                "sales_target": str(rng.choice([3000, 9000, 20000])),
                "active_outlets_target": rng.choice([3, 5]),
            }
        )
        planned = promotion_planned(dealer, start + 20 * DAY, f"P-{d}", budget="500")
        planned["starts_on"] = (start + 25 * DAY).date().isoformat()
        planned["ends_on"] = (start + 34 * DAY).date().isoformat()
        events += [
            planned,
            promotion_spend(dealer, start + 26 * DAY, f"P-{d}", str(300 + 150 * (d % 3))),
            {
                "event_id": f"end-{dealer}",
                "type": "promotion.ended",
                "dealer_id": dealer,
                "occurred_at": iso(start + 36 * DAY),
                "promotion_id": f"P-{d}",
            },
        ]
    return sorted(events, key=lambda e: e["occurred_at"])


def write(path, events) -> str:
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
    return str(path)


def opened(lines) -> set[tuple]:
    """(rule, dealer, subject, opened_at) of every alert a backtest opened."""
    return {(a["rule_id"], a["dealer_id"], a["subject"], a["opened_at"]) for a in lines if a["state"] == "open"}


def backtest_opened(path: str, now: dt.datetime | None = None) -> set[tuple]:
    out = io.StringIO()
    backtest(path, policy.load("policies/default.yaml"), now, out=out, err=io.StringIO())
    return opened(json.loads(line) for line in out.getvalue().splitlines())


def stored_alerts(notify) -> list[dict]:
    """Every alert notify stored, all pages."""
    items, cursor = [], None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(f"{notify.url}/v1/alerts", params=params, timeout=10).json()
        items += body["items"]
        if not (cursor := body["next_cursor"]):
            return items


def alert_key(alert: dict) -> tuple:
    opened_at = dt.datetime.fromisoformat(str(alert["opened_at"]).replace("Z", "+00:00")).isoformat()
    return (alert["rule_id"], alert["dealer_id"], alert["subject"], opened_at)


def post(ingest, events: list[dict], attempts: int = 60) -> None:
    """POST as an integrator does: a refused request (503, or ingest away) is retried with the
    same events; anything else but 202 fails the test."""
    for _ in range(attempts):
        try:
            response = httpx.post(f"{ingest.url}/v1/events", json=events, timeout=30)
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code == 202:
            return
        if response is not None and response.status_code != 503:
            raise AssertionError(f"{response.status_code}: {response.text[:2000]}")
        import time

        time.sleep(0.5)
    raise AssertionError(f"not accepted after {attempts} attempts")


def chunks(events: list[dict], size: int) -> list[list[dict]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


MARKER = "marker-dealer"


def settle(ingest, notify, seconds: float = 90) -> None:
    """Wait until everything posted before now is judged and stored: a marker alert posted last
    comes through rules and notify after everything before it (both consume in order)."""
    from conftest import wait_for
    from factories import now, over_budget

    promotion = f"M-{uuid.uuid4().hex[:6]}"
    post(ingest, over_budget(MARKER, now(), promotion))
    wait_for(
        lambda: (
            httpx.get(f"{notify.url}/v1/alerts", params={"dealer_id": MARKER, "limit": 500}).json()["items"]
            and any(
                a["subject"] == promotion
                for a in httpx.get(f"{notify.url}/v1/alerts", params={"dealer_id": MARKER, "limit": 500}).json()["items"]
            )
        ),
        seconds,
    )


def live_opened(notify) -> set[tuple]:
    return {alert_key(a) for a in stored_alerts(notify) if a["dealer_id"] != MARKER}


def clock(rules) -> dt.datetime:
    return dt.datetime.fromisoformat(httpx.get(f"{rules.url}/clock").json()["judged_until"])


def assert_converged(rules, ingest, notify, path: str) -> set[tuple]:
    """Once no dealer is held any more, the live alerts are those of a backtest up to where the
    live clock stands (read before and after, as it moves on); returns them."""
    from conftest import wait_for

    wait_for(lambda: httpx.get(f"{rules.url}/clock").json()["dealers_held"] == 0, 120)
    before = clock(rules)
    settle(ingest, notify)
    live = live_opened(notify)
    after = clock(rules)
    lower, upper = backtest_opened(path, before), backtest_opened(path, after)
    assert lower <= live, f"missing: {sorted(lower - live)}"
    assert live <= upper, f"not raised by the backtest: {sorted(live - upper)}"
    return live


def network_history(today: dt.date) -> list[dict]:
    """Two dealers' network: N-1 registered with three outlets (one closed, one silent), five visit
    plans (done, done late, missed, cancelled, still planned); N-2 unregistered with one plan done."""
    t, DAY = now(), dt.timedelta(days=1)
    noon = lambda day: dt.datetime.combine(day, dt.time(12), dt.UTC)  # noqa: E731 - a local shorthand
    return [
        dealer_registered("N-1", t - 40 * DAY, name="华东缝纫设备有限公司", region="华东"),
        outlet_registered("N-1", t - 40 * DAY, "O-1", level="sub-distributor"),
        outlet_registered("N-1", t - 40 * DAY, "O-2"),
        outlet_registered("N-1", t - 60 * DAY, "O-3"),
        network_event(
            "target.set",
            "N-1",
            t - 40 * DAY,
            period=today.strftime("%Y-%m"),
            sales_target="0",
            active_outlets_target=0,
            outlet_coverage_target="0.9",
        ),
        visit_planned("N-1", t - 30 * DAY, "PL-done", today - 20 * DAY),
        visit_planned("N-1", t - 30 * DAY, "PL-late", today - 15 * DAY, kind="leadership"),
        visit_planned("N-1", t - 30 * DAY, "PL-missed", today - 10 * DAY, kind="symposium", visitor="rep-9"),
        visit_planned("N-1", t - 30 * DAY, "PL-cancel", today - 5 * DAY),
        visit_planned("N-1", t - 2 * DAY, "PL-future", today + 3 * DAY, outlet_id="O-1"),
        {**visit("N-1", noon(today - 20 * DAY)), "outlet_id": "O-1"},
        {**visit("N-1", noon(today - 14 * DAY), kind="leadership"), "plan_id": "PL-late"},
        network_event("visit.plan_cancelled", "N-1", t - 8 * DAY, plan_id="PL-cancel"),
        sale("N-1", t - 3 * DAY, "1200", outlet_id="O-1"),
        sale("N-1", t - 2 * DAY, "-200", quantity=-1, outlet_id="O-1"),
        network_event("outlet.closed", "N-1", t - 2 * DAY, outlet_id="O-2"),
        visit_planned("N-2", t - 30 * DAY, "PL-A", today - 20 * DAY),
        visit("N-2", noon(today - 20 * DAY)),
    ]


def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def support_history(end: dt.datetime) -> list[dict]:
    """100 days ending at `end` that raise every rule of #24 whatever the date: a quarter's end
    and a quarter's half always fall in them. I-REACH sells 20,000 a day over the last 20 days of
    the quarter before (within 10% of the 300,000 tier with 6 days left); I-GATE has targets of
    100,000 a month and sells 1,000 a day (its gate at risk from the quarter's half); S-A gets a
    rep ended early and an unshared vehicle, S-B a vehicle shared at 1% that runs to its
    ends_on; PR has a promotion far behind what its owner expected, ended on its last day."""
    from factories import support_dispatched, support_ended

    start, today = end - 100 * DAY, end.date()
    previous_end = quarter_start(today) - DAY
    noon = lambda day: dt.datetime.combine(day, dt.time(12), dt.UTC)  # noqa: E731 - a local shorthand
    events = [dealer_registered(dealer, start, region="华东") for dealer in ("I-REACH", "I-GATE", "S-A", "S-B", "PR")]
    for day in range(100):  # at 02:00 of each day up to yesterday
        at = dt.datetime.combine(start.date() + day * DAY, dt.time(2), dt.UTC)
        if 0 < (previous_end - at.date()).days + 1 <= 20:
            events.append(sale("I-REACH", at, "20000"))
        events += [sale("I-GATE", at, "1000"), sale("S-A", at, "500"), sale("S-B", at, "400"), sale("PR", at, "300")]
    month = dt.date(start.year, start.month, 1)
    while month <= today + 31 * DAY:
        events.append(
            network_event(
                "target.set", "I-GATE", start, period=month.strftime("%Y-%m"), sales_target="100000", active_outlets_target=0
            )
        )
        month = (month + 32 * DAY).replace(day=1)
    s_start = (end - 30 * DAY).date()
    events += [
        support_dispatched("S-A", noon(s_start), "SA-rep", s_start, s_start + 20 * DAY, cost="5000", dealer_share="0.2"),
        support_ended("S-A", noon(s_start + 9 * DAY), "SA-rep"),
        support_dispatched(
            "S-A", noon(s_start + 2 * DAY), "SA-car", s_start + 2 * DAY, s_start + 6 * DAY, kind="vehicle", cost="900"
        ),
        support_dispatched(
            "S-B", noon(s_start), "SB-car", s_start, s_start + 12 * DAY, kind="vehicle", cost="900", dealer_share="0.01"
        ),
    ]
    p_start = (end - 40 * DAY).date()
    planned = promotion_planned("PR", noon(p_start - 3 * DAY), "PR-1", budget="2000")
    planned.update(starts_on=p_start.isoformat(), ends_on=(p_start + 9 * DAY).isoformat(), expected_sales="50000")
    events += [
        planned,
        network_event("promotion.ended", "PR", noon(p_start + 9 * DAY) + dt.timedelta(hours=6), promotion_id="PR-1"),
    ]
    return sorted(events, key=lambda e: e["occurred_at"])
