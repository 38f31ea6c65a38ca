"""The warning procedure after delivery (#23) on the real stack: every alert has an assignee (the
rule's owner, else the routes file's `assign` list), who can be moved and routed to; findings are
kept in any state; a resolve names a cause from the list (the old free-text shape still works)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import httpx
import pymongo
from conftest import free_port, routes_file, wait_for
from factories import dealer_registered, now, over_budget, sale, signal
from helpers import WebhookReceiver, publish
from histories import post

from services.common.topology import Topology
from services.notify.causes import DEFAULT_CAUSES

ROUTES = """version: 1
receivers:
  ops: {webhook: {url_env: DEALERWATCH_RECEIVER_OPS_HOOK}}
  li-na: {webhook: {url_env: DEALERWATCH_RECEIVER_LINA_HOOK}}
route:
  receiver: ops
  routes:
    - match: {assignee: li.na}
      receiver: li-na
assign:
  - {match: {region: north}, to: li.na}
  - {match: {rule_id: dealer-inactive}, to: wang.fang}
"""


def alerts(notify, **params) -> dict[tuple[str, str], dict]:
    items = httpx.get(f"{notify.url}/v1/alerts", params={"limit": 100, **params}).json()["items"]
    return {(a["rule_id"], a["dealer_id"]): a for a in items}


def test_assignees_come_from_the_owner_or_the_routes_file_and_route_the_alert(services, tmp_path):
    ops, li_na = WebhookReceiver(free_port()).start(), WebhookReceiver(free_port()).start()
    env = {
        "DEALERWATCH_ROUTES_FILE": routes_file(tmp_path, ROUTES),
        "DEALERWATCH_RECEIVER_OPS_HOOK": ops.url,
        "DEALERWATCH_RECEIVER_LINA_HOOK": li_na.url,
    }
    ingest, rules, notify = services("ingest", "rules", "notify", env=env)
    at, month_ago = now(), now() - dt.timedelta(days=31)
    post(
        ingest,
        [
            *over_budget("D-1", at, region="north"),  # the promotion's owner, Wang Fang, before the north entry
            # never visited, last sale 31 days ago: visit-overdue and dealer-inactive, rules without owners
            {**sale("D-2", month_ago), "region": "north"},
            {**dealer_registered("D-2", month_ago), "region": "north"},
            {**sale("D-3", month_ago), "region": "south"},
            {**dealer_registered("D-3", month_ago), "region": "south"},
        ],
    )
    found = wait_for(lambda: len(a := alerts(notify)) == 5 and a, seconds=40)
    assignees = {key: alert["assignee"] for key, alert in found.items()}
    assert assignees == {
        ("promotion-over-budget", "D-1"): "Wang Fang",
        ("visit-overdue", "D-2"): "li.na",
        ("dealer-inactive", "D-2"): "li.na",
        ("dealer-inactive", "D-3"): "wang.fang",
        ("visit-overdue", "D-3"): None,
    }
    assert set(alerts(notify, assignee="li.na")) == {("visit-overdue", "D-2"), ("dealer-inactive", "D-2")}
    assert set(alerts(notify, assignee="none")) == {("visit-overdue", "D-3")}
    # the assignee is a label: li.na's alerts went to her receiver, the others to ops
    wait_for(lambda: len(li_na.received) == 2 and len(ops.received) == 3)
    assert {a["dealer_id"] for a in li_na.received} == {"D-2"} and all(a["assignee"] == "li.na" for a in li_na.received)

    unassigned = found[("visit-overdue", "D-3")]["alert_id"]
    moved = httpx.post(
        f"{notify.url}/v1/alerts/{unassigned}/assign", json={"by": "zhao.lei", "to": "li.na", "note": "she covers south now"}
    )
    assert moved.status_code == 200 and moved.json()["assignee"] == "li.na"
    entry = moved.json()["history"][-1]
    assert (entry["action"], entry["by"], entry["to"], entry["text"]) == ("assigned", "zhao.lei", "li.na", "she covers south now")
    assert len(alerts(notify, assignee="li.na")) == 3 and not alerts(notify, assignee="none")
    assert httpx.post(f"{notify.url}/v1/alerts/nope/assign", json={"by": "x", "to": "y"}).status_code == 404


def test_findings_in_any_state_and_a_resolve_names_a_counted_cause(services, amqp_url, namespace):
    (notify,) = services("notify")
    exchange = Topology(namespace).alert_signals.name
    for alert_id in ("C1", "C2", "C3"):
        publish(amqp_url, exchange, "k", signal(alert_id, 1))
    wait_for(lambda: len(alerts(notify)) == 3)
    url = f"{notify.url}/v1/alerts"

    listed = httpx.get(f"{notify.url}/v1/causes").json()["items"]
    assert [c["id"] for c in listed] == [c.id for c in DEFAULT_CAUSES] and listed[0]["zh"] == "缺货"
    assert httpx.post(f"{url}/C1/notes", json={"by": "li.na", "text": "the dealer's stock ran out on Monday"}).status_code == 200
    resolved = httpx.post(f"{url}/C1/resolve", json={"by": "li.na", "cause": "stock-out", "note": "restocked on Tuesday"})
    assert resolved.status_code == 200
    body = resolved.json()
    assert (body["resolved_cause"], body["resolved_note"], body["history"][-1]["cause"]) == (
        "stock-out",
        "restocked on Tuesday",
        "stock-out",
    )
    after = httpx.post(f"{url}/C1/notes", json={"by": "wang", "text": "it came back a week later"})  # after resolution too
    assert after.status_code == 200
    assert [(h["action"], h["text"]) for h in after.json()["history"]][1:] == [
        ("noted", "the dealer's stock ran out on Monday"),
        ("resolved", "restocked on Tuesday"),
        ("noted", "it came back a week later"),
    ]
    assert httpx.post(f"{url}/C1/assign", json={"by": "x", "to": "y"}).status_code == 409  # resolved: it keeps its assignee

    legacy = httpx.post(f"{url}/C2/resolve", json={"by": "li.na", "cause": "called the dealer"})  # the shape before #23
    assert legacy.status_code == 200 and (legacy.json()["resolved_cause"], legacy.json()["resolved_note"]) == (
        "other",
        "called the dealer",
    )
    unknown = httpx.post(f"{url}/C3/resolve", json={"by": "li.na", "cause": "weather", "note": "rain"})
    assert unknown.status_code == 422
    assert "unknown cause 'weather'" in unknown.text and "stock-out" in unknown.text and "seasonal" in unknown.text
    assert httpx.get(f"{url}/C3").json()["status"] == "open"  # refused: nothing changed
    assert httpx.post(f"{url}/C3/notes", json={"by": "li.na", "text": ""}).status_code == 422


def test_the_routes_file_gives_its_own_causes(services, tmp_path):
    routes = ROUTES.replace("assign:", "causes:\n  - {id: flood, en: Flood, zh: 洪水}\nassign:")
    env = {"DEALERWATCH_ROUTES_FILE": routes_file(tmp_path, routes), "DEALERWATCH_RECEIVER_OPS_HOOK": "http://127.0.0.1:9/"}
    (notify,) = services("notify", env={**env, "DEALERWATCH_RECEIVER_LINA_HOOK": "http://127.0.0.1:9/"})
    listed = httpx.get(f"{notify.url}/v1/causes").json()["items"]
    assert [c["id"] for c in listed] == ["flood", "other"]  # other: the old free-text shape needs it
    assert httpx.get(f"{notify.url}/board/config.json").json()["causes"] == listed


def test_the_warnings_report_on_a_history_whose_every_number_is_known(services, amqp_url, mongo_url, namespace):
    """Six alerts through notify (signals, acknowledgements and resolutions over the API and from
    the rules), their wall-clock steps then set to known times: every field of the report by
    region is known in advance, and the CSV holds the same rows."""
    (rules,) = services("rules")
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    exchange, url = Topology(namespace).alert_signals.name, f"{notify.url}/v1/alerts"
    base = now().replace(microsecond=0) - dt.timedelta(days=50)
    day, hour, minute = dt.timedelta(days=1), dt.timedelta(hours=1), dt.timedelta(minutes=1)
    plan = {  # alert: (region, rule, dealer, first seen)
        "W1": ("north", "sales-drop", "D-1", base),
        "W2": ("north", "sales-drop", "D-2", base + day),
        "W3": ("south", "sales-drop", "D-3", base + 2 * day),
        "W4": ("north", "visit-overdue", "D-1", base + 3 * day),
        "W5": ("south", "sales-drop", "D-3", base + 12 * day),  # 10 days after W3's resolution: W3 recurred
        "W6": ("north", "sales-drop", "D-1", base + 45 * day),  # 45 days after W1's: not a recurrence
    }
    for alert_id, (region, rule, dealer, seen) in plan.items():
        fields = {"rule_id": rule, "dealer_id": dealer, "labels": {"region": region}, "opened_at": seen, "at": seen}
        publish(amqp_url, exchange, "k", signal(alert_id, 1, **fields))
    wait_for(lambda: len(httpx.get(url, params={"limit": 100}).json()["items"]) == 6)
    httpx.post(f"{url}/W1/ack", json={"by": "li.na"}).raise_for_status()
    httpx.post(f"{url}/W2/ack", json={"by": "li.na"}).raise_for_status()
    httpx.post(f"{url}/W1/resolve", json={"by": "li.na", "cause": "stock-out", "note": "restocked"}).raise_for_status()
    w3 = plan["W3"]
    resolve = {"rule_id": w3[1], "dealer_id": w3[2], "labels": {"region": "south"}, "opened_at": w3[3], "at": w3[3] + 5 * hour}
    publish(amqp_url, exchange, "k", signal("W3", 2, state="resolved", **resolve))
    wait_for(lambda: httpx.get(f"{url}/W3").json()["status"] == "resolved")
    # the wall clock of each step, set to known times (the lifecycle above was real)
    known = {
        "W1": {"acknowledged_at": 10 * minute, "resolution_stored_at": 2 * hour, "resolved_at": 2 * hour},
        "W2": {"acknowledged_at": 30 * minute},
        "W3": {"resolution_stored_at": 5 * hour},
    }
    with pymongo.MongoClient(mongo_url) as client:
        collection = client[namespace]["alerts"]
        for alert_id, (_, _, _, seen) in plan.items():
            steps = {name: seen + after for name, after in known.get(alert_id, {}).items()}
            collection.update_one({"_id": alert_id}, {"$set": {"created_at": seen, **steps}})
    period = {"group_by": "region", "since": (base - day).isoformat(), "until": now().isoformat()}
    asked = now()
    report = httpx.get(f"{notify.url}/v1/reports/warnings", params=period).json()
    rows = {row["group"]: row for row in report["items"]}
    north_oldest = round((asked - plan["W2"][3]).total_seconds() / 3600, 3)
    assert rows["north"].pop("oldest_open_hours") - north_oldest < 0.05
    assert rows["north"] == {
        "group": "north",
        "raised": 4,
        "acknowledged": 2,
        "resolved_by_rules": 0,
        "resolved_by_person": 1,
        "open": 3,
        "ack_p50_minutes": 10.0,
        "ack_p90_minutes": 30.0,
        "resolve_p50_hours": 2.0,
        "resolve_p90_hours": 2.0,
        "recurred_30d": 0,
    }
    south_oldest = round((asked - plan["W5"][3]).total_seconds() / 3600, 3)
    assert rows["south"].pop("oldest_open_hours") - south_oldest < 0.05
    assert rows["south"] == {
        "group": "south",
        "raised": 2,
        "acknowledged": 0,
        "resolved_by_rules": 1,
        "resolved_by_person": 0,
        "open": 1,
        "ack_p50_minutes": None,
        "ack_p90_minutes": None,
        "resolve_p50_hours": 5.0,
        "resolve_p90_hours": 5.0,
        "recurred_30d": 1,
    }
    assert sum(w["raised"] for w in report["by_week"]) == 6 and sum(w["resolved"] for w in report["by_week"]) == 2
    by_cause = httpx.get(f"{notify.url}/v1/reports/warnings", params={**period, "group_by": "cause"}).json()["items"]
    assert {row["group"]: row["raised"] for row in by_cause} == {None: 5, "stock-out": 1}

    as_csv = httpx.get(f"{notify.url}/v1/reports/warnings", params=period, headers={"Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text == httpx.get(f"{notify.url}/v1/reports/warnings", params={**period, "format": "csv"}).text
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    again = httpx.get(f"{notify.url}/v1/reports/warnings", params=period).json()["items"]
    assert lines == [{k: "" if v is None else str(v) for k, v in row.items()} for row in again]
    wrong = httpx.get(
        f"{notify.url}/v1/reports/warnings", params={**period, "since": now().isoformat(), "until": (base).isoformat()}
    )
    assert wrong.status_code == 422 and "since must not be after until" in wrong.text
