"""Dealer feedback end to end (#23): ingest -> rules (feedback-unanswered) -> notify (the alert
with its assignee, the dealer file, the feedback report); an answer resolves the alert."""

from __future__ import annotations

import csv
import datetime as dt
import io

import httpx
from conftest import wait_for
from factories import dealer_registered, feedback_answered, feedback_received, now
from histories import post

DAY = dt.timedelta(days=1)
RULE = "feedback-unanswered"


def test_feedback_is_warned_about_listed_answered_and_counted(services):
    ingest, rules = services("ingest", "rules")
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    at = now()
    post(
        ingest,
        [
            {**dealer_registered("FB-D", at - 30 * DAY), "region": "华东"},
            feedback_received("FB-D", at - 20 * DAY, "FB-old", received_by="rep-7"),
            feedback_received("FB-D", at - 10 * DAY, "FB-done", channel="hotline", topic="价格"),
            feedback_answered("FB-D", at - 5 * DAY, "FB-done", text="已调整华东区价格"),
            feedback_received("FB-D", at - 2 * DAY, "FB-new", channel="visit"),
        ],
    )
    alerts_url = f"{notify.url}/v1/alerts"
    (alert,) = wait_for(lambda: httpx.get(alerts_url, params={"rule_id": RULE}).json()["items"], seconds=30)
    assert (alert["subject"], alert["owner"], alert["assignee"]) == ("FB-old", "rep-7", "rep-7")
    assert "交货期" in alert["summaries"]["zh"]

    file = wait_for(lambda: (f := httpx.get(f"{notify.url}/v1/dealers/FB-D").json()) and len(f.get("feedback", [])) == 3 and f)
    listed = [(i["feedback_id"], i["status"]) for i in file["feedback"]]
    assert listed == [("FB-old", "open"), ("FB-new", "open"), ("FB-done", "answered")]  # longest waiting first
    done = file["feedback"][2]
    assert done["answer"] == "已调整华东区价格" and done["answer_days"] == 5.0 and done["answered_by"] == "li.na"
    assert round(file["feedback"][0]["waiting_days"]) == 20

    report_url = f"{notify.url}/v1/reports/feedback"
    by_channel = {r["group"]: r for r in httpx.get(report_url, params={"group_by": "channel"}).json()["items"]}
    assert {k: (r["received"], r["answered"], r["open"]) for k, r in by_channel.items()} == {
        "symposium": (1, 0, 1),
        "hotline": (1, 1, 0),
        "visit": (1, 0, 1),
    }
    assert by_channel["hotline"]["answer_p50_days"] == 5.0 and by_channel["symposium"]["answer_p50_days"] is None
    (region,) = httpx.get(report_url, params={"group_by": "region"}).json()["items"]
    assert (region["group"], region["received"]) == ("华东", 3)
    rows = list(csv.DictReader(io.StringIO(httpx.get(report_url, params={"group_by": "topic", "format": "csv"}).text)))
    assert {r["group"]: r["received"] for r in rows} == {"交货期": "2", "价格": "1"}

    post(ingest, [feedback_answered("FB-D", now(), "FB-old", text="下周起一周交货")])
    wait_for(lambda: httpx.get(f"{alerts_url}/{alert['alert_id']}").json()["status"] == "resolved")
    assert httpx.get(f"{alerts_url}/{alert['alert_id']}").json()["resolved_by"] == "rules"
