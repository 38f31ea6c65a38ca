"""The dealer file after a promotion ends, and the list of dealers with open alerts."""

from __future__ import annotations

import datetime as dt

import httpx
from conftest import wait_for
from factories import iso, now, promotion_planned, promotion_spend, sale, visit
from helpers import publish_events

from services.common.topology import Topology


def test_dealer_file_after_a_promotion_ends(services):
    ingest, rules = services("ingest", "rules")
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    at = now() - dt.timedelta(days=20)
    day = dt.timedelta(days=1)
    planned = dict(
        promotion_planned("F-1", at, "P-9", budget="300", owner="Wang Fang"),
        starts_on=(at + day).date().isoformat(),
        ends_on=(at + 5 * day).date().isoformat(),
    )
    events = [
        visit("F-1", at, kind="leadership"),
        planned,
        {
            "event_id": "appr-F1",
            "type": "promotion.approved",
            "dealer_id": "F-1",
            "occurred_at": iso(at + dt.timedelta(hours=1)),
            "promotion_id": "P-9",
            "approved_by": "Zhao Lei",
        },
        sale("F-1", at + 2 * day, "300"),
        promotion_spend("F-1", at + 2 * day, "P-9", "400"),
        {
            "event_id": "end-F1",
            "type": "promotion.ended",
            "dealer_id": "F-1",
            "occurred_at": iso(at + 6 * day),
            "promotion_id": "P-9",
        },
        visit("F-1", at + 8 * day),
        sale("F-2", now() - 50 * day),
    ]
    assert httpx.post(f"{ingest.url}/v1/events", json=events).status_code == 202

    def file_ready():
        response = httpx.get(f"{notify.url}/v1/dealers/F-1")
        body = response.json() if response.status_code == 200 else {}
        promotions = body.get("promotions") or [{}]
        return body if len(body.get("visits", [])) == 2 and promotions[0].get("evaluation") and body.get("open_alerts") else None

    record = wait_for(file_ready, seconds=30)
    assert [v["kind"] for v in record["visits"]] == ["routine", "leadership"]  # newest first
    (promotion,) = record["promotions"]
    assert promotion["owner"] == "Wang Fang" and promotion["approved_by"] == "Zhao Lei" and promotion["spend"] == 400
    assert [e["type"] for e in promotion["events"]] == [
        "promotion.planned",
        "promotion.approved",
        "promotion.spend",
        "promotion.ended",
    ]
    evaluation = promotion["evaluation"]
    assert evaluation["verdict"] == "ineffective" and evaluation["sales_during"] == 300 and evaluation["spend"] == 400
    assert record["measures"]["days_since_visit"] > 11 and record["measures_error"] is None
    assert {a["rule_id"] for a in record["open_alerts"]} >= {"promotion-ineffective", "promotion-over-budget"}

    # F-1 has a critical alert (over budget); F-2's warnings are older. F-2's alerts open one by
    # one as the clock catches up on its 50 days (unregistered, an info, at day 7; inactive, a
    # warning, at day 21): the list is read until it has settled, not at its first two rows
    expected = [("F-1", "critical"), ("F-2", "warning")]

    def severities():
        rows = httpx.get(f"{notify.url}/v1/dealers").json()["items"]
        return [(r["dealer_id"], r["highest_severity"]) for r in rows]

    wait_for(lambda: severities() == expected, seconds=30)
    assert severities() == expected
    by_age = httpx.get(f"{notify.url}/v1/dealers", params={"sort": "age"}).json()["items"]
    assert [r["dealer_id"] for r in by_age] == ["F-2", "F-1"]
    assert httpx.get(f"{notify.url}/v1/dealers/nobody").status_code == 404


def test_both_notify_consumers_keep_going_under_a_mixed_burst(services, amqp_url, namespace):
    """Visits for the dealer file and alert signals at once: each consumer acks its batches on
    its own channel (sharing one, a batch ack settled the other consumer's messages and the
    broker closed the channel: "unknown delivery tag")."""

    from helpers import publish, queue_depth
    from test_notify import signal

    (notify,) = services("notify")
    at = now()
    visits = [visit(f"DV-{n % 20}", at - dt.timedelta(minutes=n)) for n in range(600)]
    signals = [signal(f"V{n}", 1) for n in range(150)]
    # signals first: their slow handling leaves them unacked while the visits' batches are acked
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", *signals)
    publish_events(amqp_url, namespace, *visits)
    wait_for(lambda: len(httpx.get(f"{notify.url}/v1/alerts", params={"limit": 500}).json()["items"]) == 150, seconds=60)
    wait_for(lambda: sum(len(httpx.get(f"{notify.url}/v1/dealers/DV-{d}").json()["visits"]) for d in range(20)) == 600)
    wait_for(
        lambda: (
            queue_depth(amqp_url, Topology(namespace).dealer_file_queue.name) == 0
            and queue_depth(amqp_url, Topology(namespace).notify_queue.name) == 0
        )
    )
    assert "unknown delivery tag" not in notify.log()


def test_weekly_sales_with_baseline_and_target(services, mongo_url, namespace):
    """What the board's chart draws: net sales per Monday-first week, the average of the 8 weeks
    before (since the first sale), and the monthly target spread over the days. The baseline's
    length, the drop line and the calendar come from the rules policy, not from notify."""
    ingest, rules = services("ingest", "rules")
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    start = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)  # a Monday
    events = [
        {
            "event_id": "t-feb",
            "type": "target.set",
            "dealer_id": "W-1",
            "occurred_at": iso(start),
            "period": "2026-02",
            "sales_target": "2800",
            "active_outlets_target": 3,
        },  # 100 a day
        {
            "event_id": "t-mar",
            "type": "target.set",
            "dealer_id": "W-1",
            "occurred_at": iso(start),
            "period": "2026-03",
            "sales_target": "3100",
            "active_outlets_target": 3,
        },
    ]  # 100 a day
    events += [sale("W-1", start + dt.timedelta(weeks=n), "1000") for n in range(8)]  # Jan 5 .. Feb 23
    events += [
        sale("W-1", start + dt.timedelta(weeks=8), "450"),
        sale("W-1", start + dt.timedelta(weeks=8, days=2), "-150"),
    ]  # a return
    assert httpx.post(f"{ingest.url}/v1/events", json=events).status_code == 202

    def series():
        body = httpx.get(f"{notify.url}/v1/dealers/W-1/weekly-sales", params={"weeks": 7, "until": "2026-03-04T12:00:00Z"}).json()
        return body if body["weeks"][-1]["net_sales"] == 300 else None

    body = wait_for(series)
    policy = httpx.get(f"{rules.url}/v1/policy").json()
    assert (body["timezone"], body["baseline_weeks"], body["drop_below"]) == (
        policy["timezone"],
        policy["dealer_file"]["baseline_weeks"],
        policy["dealer_file"]["drop_below"],
    )
    assert body["timezone"] == "UTC" and body["baseline_weeks"] == 8
    assert [(w["week_start"], w["net_sales"], w["baseline"], w["target"]) for w in body["weeks"]] == [
        ("2026-01-19", 1000, 1000, None),  # no January target; baseline of the 2 weeks since the first sale
        ("2026-01-26", 1000, 1000, 100),  # one February day
        ("2026-02-02", 1000, 1000, 700),
        ("2026-02-09", 1000, 1000, 700),
        ("2026-02-16", 1000, 1000, 700),
        ("2026-02-23", 1000, 1000, 700),  # 6 February days + March 1st
        ("2026-03-02", 300, 1000, 700),  # 450 sold, 150 returned
    ]
    assert httpx.get(f"{notify.url}/v1/dealers/W-1/weekly-sales", params={"until": "2026-03-04T12:00:00"}).status_code == 422

    # sales are kept as long as the longest chart needs them (104 weeks and the longest baseline a
    # policy may set, 26 weeks, before them), then expire
    import pymongo

    with pymongo.MongoClient(mongo_url) as client:
        kept = client[namespace]["dealer_timeline"].index_information()["sales_kept"]
    assert kept["expireAfterSeconds"] == (104 + 26 + 1) * 7 * 86400 and dict(kept["partialFilterExpression"]) == {"type": "sale"}
