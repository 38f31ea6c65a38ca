"""A policy change previewed on the rules service (#26): `POST /admin/reload?dry_run=true`
answers the diff `dealerwatch policy diff --archive` prints, and switches nothing; a real reload
is kept in the reload history (accepted, refused with its errors) with its diff on the archive,
and notify's policy view adds each rule's open alerts."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import httpx
import pymongo
from conftest import ROOT, wait_for
from histories import chunks, history, post, settle
from test_archive import ctl

OLD = "and sales_7d < 0.7 * sales_baseline_weekly"


def test_a_dry_run_reload_answers_the_archive_diff_and_changes_nothing(services, mongo_url, namespace, tmp_path):
    path = tmp_path / "policy.yaml"
    shutil.copy(ROOT / "policies" / "default.yaml", path)
    text = path.read_text(encoding="utf-8")
    assert OLD in text
    changed = text.replace(OLD, OLD.replace("0.7", "0.8"))
    env = {"DEALERWATCH_POLICY_FILE": str(path), "DEALERWATCH_FILES_POLL_SECONDS": "3600"}  # reloads: by the endpoint only
    ingest, rules = services("ingest", "rules", env=env)
    (notify,) = services("notify", env={**env, "DEALERWATCH_RULES_URL": rules.url})
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    events = history(end, dealers=5, days=80, seed=3)
    for part in chunks(events, 500):
        post(ingest, part)
    settle(ingest, notify)
    database = pymongo.MongoClient(mongo_url)[namespace]
    wait_for(lambda: database["events"].count_documents({}) >= len(events), 60)
    version = httpx.get(f"{rules.url}/readyz").json()["policy_version"]

    answer = httpx.post(f"{rules.url}/admin/reload", params={"dry_run": "true"}, content=changed.encode(), timeout=120)
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["dry_run"] is True and preview["reloaded"] is False
    assert httpx.get(f"{rules.url}/readyz").json()["policy_version"] == version  # nothing switched
    assert path.read_text(encoding="utf-8") == text
    (tmp_path / "new.yaml").write_text(changed, encoding="utf-8")
    where = ["--mongo-url", mongo_url, "--database", namespace]
    printed = ctl(
        "policy", "diff", str(path), str(tmp_path / "new.yaml"), "--archive", "--since", "90d", "--format", "json", *where
    )
    assert printed.returncode == 0, printed.stderr
    expected = json.loads(printed.stdout)
    found = preview["diff"]
    assert found["alerts"] == expected["alerts"] and found["rules"] == expected["rules"]
    assert found["alerts"]["only_new"] + found["alerts"]["moved"] > 0 and {r["rule_id"] for r in found["rules"]} == {"sales-drop"}
    assert found["archive"]["days"] == 90

    broken = httpx.post(f"{rules.url}/admin/reload", params={"dry_run": "true"}, content=b"version: 1\nrules: [{id: x}]\n")
    assert broken.status_code == 422 and any("posted policy:2:" in line for line in broken.json()["errors"])

    # the real reloads: accepted (its diff worked out on the archive), then refused
    path.write_text(changed, encoding="utf-8")
    assert httpx.post(f"{rules.url}/admin/reload").json()["reloaded"] is True
    path.write_text(changed.replace("severity: warning", "severity: loud", 1), encoding="utf-8")
    refused = httpx.post(f"{rules.url}/admin/reload")
    assert refused.status_code == 422
    live = wait_for(lambda: (v := httpx.get(f"{notify.url}/v1/policy/live").json())["last_diff"] and v, 120)
    assert [r["outcome"] for r in live["reloads"]] == ["refused", "accepted"]
    assert live["reloads"][0]["errors"] == refused.json()["errors"] and live["reloads"][1]["to"] == live["version"] != version
    assert live["last_diff"]["diff"]["alerts"]["only_new"] == found["alerts"]["only_new"]
    sales_drop = next(r for r in live["rules"] if r["rule_id"] == "sales-drop")
    assert sales_drop["thresholds"] == [63.0, 1000.0, 0.8] and sales_drop["summaries"]["zh"].startswith("经销商")
    active = httpx.get(f"{notify.url}/v1/alerts", params={"rule_id": "sales-drop", "status": "open", "limit": 500}).json()[
        "items"
    ]
    assert sales_drop["open_alerts"] == len(active)
    assert len(live["rules"]) == 21
