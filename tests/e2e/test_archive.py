"""The archive of accepted events (#26): every event posted is kept in MongoDB `events` from its
own queue, `dealerwatch events export` writes it back as NDJSON, and a backtest of the export
gives exactly the alerts the running stack raised."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pymongo
from conftest import ROOT, wait_for
from histories import MARKER, assert_converged, chunks, history, post

from services.common.events import parse_event


def ctl(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_posted_events_are_archived_exported_and_backtested_to_the_live_alerts(services, mongo_url, namespace, tmp_path):
    ingest, rules = services("ingest", "rules", env={"DEALERWATCH_ARCHIVE_DAYS": "3650"})
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url, "DEALERWATCH_ARCHIVE_DAYS": "3650"})
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    events = history(end, dealers=4, days=70)
    for part in chunks(events, 400):
        post(ingest, part)
    post(ingest, events[:50])  # a retry: archived once
    database = pymongo.MongoClient(mongo_url)[namespace]
    wait_for(lambda: database["events"].count_documents({}) >= len(events), 60)

    where = ["--mongo-url", mongo_url, "--database", namespace]
    exported = ctl("events", "export", *where, "--out", str(tmp_path / "all.ndjson"))
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in (tmp_path / "all.ndjson").read_text(encoding="utf-8").splitlines()]
    mine = [line for line in lines if line["dealer_id"] != MARKER]
    # every event once, as posted (the contract's reading of it), in time order
    as_posted = sorted(parse_event(e).model_dump_json() for e in events)
    assert sorted(parse_event(e).model_dump_json() for e in mine) == as_posted
    times = [parse_event(e).occurred_at for e in lines]
    assert times == sorted(times)
    path = tmp_path / "archive.ndjson"
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in mine), encoding="utf-8")
    live = assert_converged(rules, ingest, notify, str(path))
    assert live, "the history raises alerts"

    # since/until (until excluded) and one dealer
    dealer = events[0]["dealer_id"]
    since = end - dt.timedelta(days=10)
    part = ctl("events", "export", *where, "--since", since.isoformat(), "--until", end.isoformat(), "--dealer", dealer)
    assert part.returncode == 0, part.stderr
    got = [json.loads(line) for line in part.stdout.splitlines()]
    wanted = [e for e in events if e["dealer_id"] == dealer and since <= parse_event(e).occurred_at < end]
    assert sorted(e["event_id"] for e in got) == sorted(e["event_id"] for e in wanted) and wanted
    assert f"exported {len(wanted):,} events" in part.stderr

    # the retention: a TTL index on the event's time, replaced when DEALERWATCH_ARCHIVE_DAYS changes
    index = database["events"].index_information()["retention"]
    assert index["expireAfterSeconds"] == 3650 * 86400 and index["key"] == [("occurred_at", 1)]
    notify.stop()
    services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    assert database["events"].index_information()["retention"]["expireAfterSeconds"] == 400 * 86400
