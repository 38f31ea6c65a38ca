"""Backtest and explain for rule authors; backtest and the live service agree on real components."""

from __future__ import annotations

import datetime as dt
import io
import json

import httpx
from factories import now, sale, visit
from helpers import drain, queue_depth
from histories import assert_converged, history, network_history, opened, write

from services.cli import main
from services.common.topology import Topology
from services.rules import policy
from services.rules.backtest import backtest

DAY = dt.timedelta(days=1)


def test_backtest_writes_alerts_and_a_summary(tmp_path, capsys):
    end = dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC)
    events = history(end)
    events.insert(5, {"type": "sale", "dealer_id": "x"})  # a broken line is reported, not fatal
    path = write(tmp_path / "events.ndjson", events)
    assert main(["backtest", path]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert lines and all({"rule_id", "dealer_id", "severity", "at", "summary"} <= set(line) for line in lines)
    rules = {line["rule_id"] for line in lines}
    assert {"sales-drop", "dealer-inactive", "promotion-over-budget", "promotion-ineffective"} <= rules
    assert not any("{" in line["summary"] for line in lines)  # templates always render
    assert "skipped, not a valid event" in captured.err and "total" in captured.err
    assert all(line["at"] <= end.isoformat() for line in lines)  # --now defaults to the last event


def test_backtest_ticks_at_midnights_and_at_now(tmp_path):
    start = dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    path = write(tmp_path / "e.ndjson", [sale("M-1", start), visit("M-1", start)])
    out = io.StringIO()
    backtest(path, policy.load("policies/default.yaml"), start + 45 * DAY, out=out, err=io.StringIO())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    by_rule = {line["rule_id"]: line for line in lines}
    # with no further event, the clock alone raises both absences at their exact crossing times
    assert by_rule["dealer-inactive"]["opened_at"] == (start + 21 * DAY + dt.timedelta(seconds=1)).isoformat()
    assert by_rule["visit-overdue"]["opened_at"] == (start + 30 * DAY + dt.timedelta(seconds=1)).isoformat()


def test_explain_shows_measures_and_distance_to_firing(tmp_path, capsys):
    end = dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC)
    path = write(tmp_path / "events.ndjson", history(end))
    assert main(["explain", path, "--dealer", "H-0", "--at", "2026-06-30T12:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "sales_7d" in out and "days_since_visit" in out
    assert "visit-overdue" in out and "difference" in out
    assert main(["explain", path, "--dealer", "nobody"]) == 1


def test_backtest_and_explain_cover_the_network(tmp_path, capsys):
    """Every new event type in one file: the backtest raises each network rule once, for the dealer
    and subject it is about, and explain shows the outlets and plans with their distance."""
    events = network_history(now().date())
    path = write(tmp_path / "network.ndjson", sorted(events, key=lambda e: e["occurred_at"]))
    assert main(["backtest", path, "--now", now().isoformat()]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    raised = {(line["rule_id"], line["dealer_id"], line["subject"]) for line in lines if line["state"] == "open"}
    assert {
        ("planned-visit-missed", "N-1", "PL-missed"),
        ("outlet-silent", "N-1", "O-3"),
        ("distribution-coverage", "N-1", None),
        ("unregistered-dealer", "N-2", None),
    } <= raised
    missed = next(line for line in lines if line["rule_id"] == "planned-visit-missed")
    assert missed["owner"] == "rep-9" and missed["dealer_name"] == "华东缝纫设备有限公司"
    assert main(["explain", path, "--dealer", "N-1", "--at", now().isoformat()]) == 0
    out = capsys.readouterr().out
    assert "dealer_registered" in out and "outlet_coverage_30d" in out
    assert "plan PL-missed" in out and "outlet O-3" in out and "plan_overdue_days > 0" in out
    assert "plan PL-future" in out  # still to come: a negative distance


def test_backtest_and_live_service_raise_the_same_alerts(services, tmp_path, amqp_url, namespace):
    """The same event file, replayed by `dealerwatch backtest` and posted to the running stack."""
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=2)
    events = history(end, dealers=5, days=75, seed=5)
    path = write(tmp_path / "events.ndjson", events)
    out = io.StringIO()
    backtest(path, policy.load("policies/default.yaml"), None, out=out, err=io.StringIO())
    expected = opened(json.loads(line) for line in out.getvalue().splitlines())
    assert len(expected) > 10

    clock = {"DEALERWATCH_CLOCK_GRACE_SECONDS": "300", "DEALERWATCH_CLOCK_HOLD_SECONDS": "5"}
    ingest, rules, notify = services("ingest", "rules", "notify", env=clock)
    for chunk in range(0, len(events), 500):
        response = httpx.post(f"{ingest.url}/v1/events", json=events[chunk : chunk + 500], timeout=30)
        assert response.status_code == 202
    last = events[-1]["occurred_at"].replace("Z", "+00:00")
    live = assert_converged(rules, ingest, notify, path)
    # up to the last event (the live clock then goes on towards wall time: later alerts are newer)
    assert {key for key in live if key[3] <= last} == expected
    evaluations = httpx.get(f"{notify.url}/v1/promotion-evaluations", params={"dealer_id": "H-1"}).json()["items"]
    assert [e["promotion_id"] for e in evaluations] == ["P-1"] and evaluations[0]["verdict"] in ("effective", "ineffective")
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 0, [
        m.headers for m in drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    ]


def test_backtest_jobs_spread_dealers_over_processes_and_give_the_same_alerts(tmp_path, capsys):
    path = write(tmp_path / "events.ndjson", history(dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC), dealers=8, days=70))
    assert main(["backtest", path, "--jobs", "1"]) == 0
    alone = capsys.readouterr()
    assert main(["backtest", path, "--jobs", "2"]) == 0
    spread = capsys.readouterr()
    assert alone.out and sorted(alone.out.splitlines()) == sorted(spread.out.splitlines())
    summary = alone.err[alone.err.index("rule ") :]
    assert spread.err[spread.err.index("rule ") :] == summary and "(8 dealers)" in summary
