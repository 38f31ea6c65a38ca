"""Event time on the real stack: history posted at an uploader's pace (pauses between requests,
a service killed in the middle, an event dated tomorrow) gives exactly the alerts that
`dealerwatch backtest` gives for the same file, and no other alert along the way."""

from __future__ import annotations

import datetime as dt
import time

import httpx
from conftest import wait_for
from factories import sale
from helpers import drain, queue_depth
from histories import alert_key, assert_converged, backtest_opened, chunks, history, live_opened, post, settle, write

from services.common.topology import Topology

PAUSE = 3.0  # longer than the 2 s after which the old clock jumped to wall time
# the production grace; holds shorter than production (an hour) but longer than the pauses,
# so that the test sees them end
CLOCK = {"DEALERWATCH_CLOCK_GRACE_SECONDS": "300", "DEALERWATCH_CLOCK_HOLD_SECONDS": "12"}


def recent_history(dealers: int = 5, days: int = 75):
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=2)
    return end, history(end, dealers=dealers, days=days, seed=5)


def test_history_posted_with_pauses_gives_the_backtests_alerts_and_no_other(services, hooks, tmp_path, amqp_url, namespace):
    hook = hooks()
    end, events = recent_history()
    expected = backtest_opened(write(tmp_path / "events.ndjson", events))
    assert len(expected) > 10
    ingest, rules, notify = services("ingest", "rules", "notify", env={**CLOCK, "DEALERWATCH_WEBHOOK_URLS": hook.url})
    for number, chunk in enumerate(chunks(events, 100)):
        if number:
            time.sleep(PAUSE)  # an uploader between requests
        post(ingest, chunk)
    settle(ingest, notify)
    last = events[-1]["occurred_at"].replace("Z", "+00:00")
    # while the history arrives and its dealers are held, nothing but the backtest's alerts
    assert {key for key in live_opened(notify) if key[3] <= last} <= expected
    live = assert_converged(rules, ingest, notify, str(tmp_path / "events.ndjson"))
    assert {key for key in live if key[3] <= last} == expected
    notified = {alert_key(a) for a in hook.received if a["dealer_id"] != "marker-dealer"}
    assert notified <= live  # no false alarm was sent
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 0, [
        m.headers for m in drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    ]


def test_rules_killed_during_a_backfill_resumes_it_without_a_false_alarm(services, tmp_path, amqp_url, namespace):
    end, events = recent_history()
    expected = backtest_opened(write(tmp_path / "events.ndjson", events))
    ingest, rules, notify = services("ingest", "rules", "notify", env=CLOCK)
    parts = chunks(events, 100)
    for chunk in parts[:2]:
        post(ingest, chunk)
    rules.stop(kill=True)  # SIGKILL in the middle of the load: whatever it had not stored is redelivered
    for chunk in parts[2:4]:
        post(ingest, chunk)  # accepted while rules is away: they wait in the queue
    time.sleep(PAUSE)
    (rules,) = services("rules", env=CLOCK)
    for chunk in parts[4:]:
        time.sleep(PAUSE)
        post(ingest, chunk)
    live = assert_converged(rules, ingest, notify, str(tmp_path / "events.ndjson"))
    last = events[-1]["occurred_at"].replace("Z", "+00:00")
    assert {key for key in live if key[3] <= last} == expected
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 0, [
        m.headers for m in drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    ]


def test_an_event_dated_tomorrow_judges_only_its_own_dealer(services, tmp_path, amqp_url, namespace):
    end, events = recent_history(dealers=4, days=70)
    tomorrow = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    ahead = sale("F-1", tomorrow, "100")  # the contract allows an event a little ahead of time
    half = len(events) // 2
    path = write(tmp_path / "events.ndjson", events[:half] + [ahead] + events[half:])
    expected = backtest_opened(path, now=end)
    ingest, rules, notify = services("ingest", "rules", "notify", env=CLOCK)
    post(ingest, events[:half])
    post(ingest, [ahead])
    time.sleep(PAUSE)
    post(ingest, events[half:])
    settle(ingest, notify)
    last = events[-1]["occurred_at"].replace("Z", "+00:00")
    assert {key for key in live_opened(notify) if key[3] <= last} <= expected
    judged = {d: httpx.get(f"{rules.url}/v1/dealers/{d}").json()["judged_until"] for d in ("F-1", "H-0", "H-3")}
    assert judged["F-1"] == tomorrow.isoformat()
    assert all(judged[d] <= end.isoformat() for d in ("H-0", "H-3"))  # the others are where their history is
    live = assert_converged(rules, ingest, notify, path)
    assert {key for key in live if key[3] <= last} == expected
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 0, [
        m.headers for m in drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    ]


def test_a_first_request_out_of_time_order_is_counted_whole(services, amqp_url, namespace):
    """Before rules has judged anything ingest cannot know the lateness: the request's own order
    must still not make an event too late (found posting a network history to a fresh stack)."""
    ingest, rules = services("ingest", "rules")
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    post(ingest, [sale("D-1", at - dt.timedelta(days=1)), sale("D-1", at - dt.timedelta(days=30))])
    wait_for(lambda: (r := httpx.get(f"{rules.url}/v1/dealers/D-1")).status_code == 200 and r.json()["events_counted"] == 2)
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 0


def test_an_event_rules_could_no_longer_count_is_refused_at_the_door(services, amqp_url, namespace):
    ingest, rules = services("ingest", "rules")
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    post(ingest, [sale("D-1", at)])
    wait_for(lambda: httpx.get(f"{rules.url}/v1/dealers/D-1").status_code == 200)
    wait_for(
        lambda: httpx.post(f"{ingest.url}/v1/events", json=[sale("D-1", at - dt.timedelta(days=7, seconds=5))]).status_code == 422
    )
    late = httpx.post(f"{ingest.url}/v1/events", json=[sale("D-2", at), sale("D-1", at - dt.timedelta(days=8))])
    assert late.status_code == 422
    (error,) = late.json()["errors"]
    assert error["index"] == 1 and error["field"] == "occurred_at" and error["message"].startswith("too late: dealer 'D-1'")
    # within one request the order does not matter: ingest publishes a request in time order
    unordered = [sale("D-3", at), sale("D-3", at - dt.timedelta(days=9))]
    assert httpx.post(f"{ingest.url}/v1/events", json=unordered).status_code == 202
    assert httpx.post(f"{ingest.url}/v1/events", json=[sale("D-1", at - dt.timedelta(days=6))]).status_code == 202
    wait_for(lambda: httpx.get(f"{rules.url}/v1/dealers/D-1").json()["events_counted"] == 2)
    wait_for(lambda: httpx.get(f"{rules.url}/v1/dealers/D-3").json()["events_counted"] == 2)
    assert queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 0  # nothing accepted was dropped
