"""Promotion owners held to account (#23), on the real stack: promotions planned, approved (or
not), spent on and ended through ingest, judged by rules, and the report by owner and by region
adds up the same evaluations the dealer file shows."""

from __future__ import annotations

import csv
import datetime as dt
import io

import httpx
from conftest import wait_for
from factories import dealer_registered, network_event, now, promotion_approved, promotion_planned, promotion_spend, sale
from histories import post

DAY = dt.timedelta(days=1)


def noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(4), dt.UTC)  # noon in Shanghai: far from either day's edge


def test_the_promotions_report_adds_up_the_evaluations_by_owner_and_region(services):
    ingest, rules = services("ingest", "rules")
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    today = now().date()
    start, end = today - 20 * DAY, today - 11 * DAY
    at = noon(start - 12 * DAY)

    def plan(dealer, promotion, budget, owner, **extra):
        event = promotion_planned(dealer, at, promotion, budget=budget, owner=owner)
        return {**event, "starts_on": start.isoformat(), "ends_on": end.isoformat(), **extra}

    ended = [
        network_event("promotion.ended", d, noon(end + DAY), promotion_id=p)
        for d, p in (("PA", "P1"), ("PB", "P2"), ("PA", "P3"))
    ]
    post(
        ingest,
        [
            {**dealer_registered("PA", at), "region": "north"},
            {**dealer_registered("PB", at), "region": "south"},
            plan("PA", "P1", "1000", "Wang Fang"),
            promotion_approved("PA", at, "P1"),
            sale("PA", noon(start - 5 * DAY), "1000"),  # before it: S = 1,000
            promotion_spend("PA", noon(start + DAY), "P1", "500"),
            sale("PA", noon(start + 2 * DAY), "3000"),  # during it: P = 3,000, ratio (3,000 - 1,000) / 500 = 4
            plan("PB", "P2", "500", "Wang Fang", expected_sales="1000"),
            promotion_spend("PB", noon(start + DAY), "P2", "800"),  # never approved, over the budget of 500
            sale("PB", noon(start + 3 * DAY), "100"),  # P = 100: ineffective, below the expected 1,000
            plan("PA", "P3", "200", "Li Na"),  # nothing spent
            *ended,
        ],
    )
    evaluations = wait_for(
        lambda: (
            len(
                found := [
                    e
                    for d in ("PA", "PB")
                    for e in httpx.get(f"{notify.url}/v1/promotion-evaluations", params={"dealer_id": d}).json()["items"]
                ]
            )
            == 3
            and found
        ),
        seconds=30,
    )
    by_id = {e["promotion_id"]: e for e in evaluations}
    assert (by_id["P1"]["verdict"], by_id["P2"]["verdict"], by_id["P3"]["verdict"]) == ("effective", "ineffective", "no-spend")
    assert (by_id["P2"]["budget"], by_id["P2"]["unapproved_spend"], by_id["P1"]["unapproved_spend"]) == (500.0, 800.0, 0.0)

    url = f"{notify.url}/v1/reports/promotions"
    period = {"since": (today - 30 * DAY).isoformat(), "until": today.isoformat()}
    rows = {r["group"]: r for r in httpx.get(url, params={**period, "group_by": "owner"}).json()["items"]}
    wang = rows["Wang Fang"]
    effect = sum(by_id[p]["sales_during"] - by_id[p]["sales_before"] for p in ("P1", "P2"))
    assert {
        k: wang[k] for k in ("ended", "budget", "spend", "ineffective", "below_expectation", "over_budget", "unapproved_spend")
    } == {
        "ended": 2,
        "budget": 1500.0,
        "spend": 1300.0,
        "ineffective": 1,
        "below_expectation": 1,
        "over_budget": 1,
        "unapproved_spend": 1,
    }
    assert wang["net_effect"] == round(effect, 2) == 2100.0 and wang["ratio"] == round(2100 / 1300, 4)
    assert [p["promotion_id"] for p in wang["promotions"]] == ["P1", "P2"]
    assert (rows["Li Na"]["ended"], rows["Li Na"]["spend"], rows["Li Na"]["ratio"]) == (1, 0.0, None)
    regions = {r["group"]: r["ended"] for r in httpx.get(url, params={**period, "group_by": "region"}).json()["items"]}
    assert regions == {"north": 2, "south": 1}
    table = list(csv.DictReader(io.StringIO(httpx.get(url, params={**period, "format": "csv"}).text)))
    assert {r["group"]: r["spend"] for r in table} == {"Wang Fang": "1300.0", "Li Na": "0.0"} and "promotions" not in table[0]
    outside = httpx.get(url, params={"since": today.isoformat(), "until": today.isoformat()}).json()["items"]
    assert outside == []  # by ends_on: none ended today
