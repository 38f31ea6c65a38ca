"""Backup and restore on the local server (#25): `dealerwatch export` of a running stack's
database, `dealerwatch import` into another, and the services started on the copy hold the same
alert history, dealer records and rules state (an event counted before is recognised again)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
from conftest import ROOT, wait_for
from factories import dealer_registered, feedback_received, now, over_budget, sale
from histories import post


def ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )


def test_export_and_import_round_trip_the_alerts_the_dealer_records_and_the_rules_state(services, mongo_url, namespace, tmp_path):
    ingest, rules = services("ingest", "rules")
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    at = now()
    counted = sale("BK-1", at, "500")
    post(
        ingest,
        [
            dealer_registered("BK-1", at, region="华东"),
            counted,
            feedback_received("BK-1", at, "FB-1"),
            *over_budget("BK-1", at, "P-1"),
        ],
    )
    wait_for(lambda: httpx.get(f"{notify.url}/v1/alerts", params={"dealer_id": "BK-1"}).json()["items"], 30)
    wait_for(lambda: httpx.get(f"{rules.url}/v1/dealers/BK-1").json().get("events_counted") == 6, 30)
    wait_for(lambda: len(httpx.get(f"{notify.url}/v1/dealers/BK-1").json()["feedback"]) == 1, 30)
    alerts = httpx.get(f"{notify.url}/v1/alerts").json()["items"]
    dealer_file = httpx.get(f"{notify.url}/v1/dealers/BK-1").json()
    for service in (ingest, rules, notify):
        service.stop()

    exported = ctl("export", "--mongo-url", mongo_url, "--database", namespace, "--out", str(tmp_path / "backup"))
    assert exported.returncode == 0, exported.stderr
    files = {p.stem: p for p in (tmp_path / "backup").glob("*.ndjson")}
    assert {"alerts", "alert_changes", "rules_dealers", "dealer_timeline", "rules_policy"} <= set(files) and "leases" not in files
    restored = f"{namespace}-restored"
    imported = ctl("import", "--mongo-url", mongo_url, "--database", restored, str(tmp_path / "backup"))
    assert imported.returncode == 0, imported.stderr
    again = ctl("import", "--mongo-url", mongo_url, "--database", restored, str(tmp_path / "backup"))
    assert again.returncode == 1 and "holds documents already" in again.stderr and "--replace" in again.stderr
    assert ctl("import", "--mongo-url", mongo_url, "--database", restored, "--replace", str(tmp_path / "backup")).returncode == 0

    env = {"DEALERWATCH_MONGO_DB": restored}
    ingest, rules = services("ingest", "rules", env=env)
    (notify,) = services("notify", env={**env, "DEALERWATCH_RULES_URL": rules.url})
    assert httpx.get(f"{notify.url}/v1/alerts").json()["items"] == alerts
    file = httpx.get(f"{notify.url}/v1/dealers/BK-1").json()
    assert (file["master"], file["feedback"], file["open_alerts"]) == (
        dealer_file["master"],
        dealer_file["feedback"],
        dealer_file["open_alerts"],
    )
    assert httpx.get(f"{rules.url}/v1/dealers/BK-1").json()["events_counted"] == 6
    post(ingest, [counted, sale("BK-1", now(), "300")])  # one counted before (recognised), one new
    wait_for(lambda: httpx.get(f"{rules.url}/v1/dealers/BK-1").json()["events_counted"] == 7, 30)
    assert json.loads(files["rules_dealers"].read_text().splitlines()[0])["_id"] == "BK-1"
