"""The operators' command line (#25) against the running stack: alerts listed with the API's
filters, shown, acknowledged, assigned and resolved; silences added for a duration, listed and
expired; every refusal (401, 404, 409, 422) an exit 1 with the API's message. The dead-letter
queue listed with each reason, shown whole, replayed (after the cause is fixed the signal
becomes its alert; an event refused again goes back with its reason) and purged."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
from conftest import ROOT, wait_for
from factories import now, over_budget
from helpers import bind, publish, queue_depth, unbind

from services.common.topology import Topology


def ctl(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})},
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_alerts_and_silences_from_the_command_line(services, tmp_path):
    ingest, rules = services("ingest", "rules")
    keys = {"DEALERWATCH_API_KEYS": "operator-key", "DEALERWATCH_VIEWER_KEYS": "viewer-key", "DEALERWATCH_RULES_URL": rules.url}
    (notify,) = services("notify", env=keys)
    httpx.post(f"{ingest.url}/v1/events", json=over_budget("CLI-1", now(), "P-1") + over_budget("CLI-2", now(), "P-2"))
    api = {"DEALERWATCH_URL": notify.url, "DEALERWATCH_KEY": "operator-key", "DEALERWATCH_BY": "ops.wang"}
    wait_for(lambda: len(json.loads(ctl("alerts", "list", "-o", "json", env=api).stdout or "[]")) == 2, 30)

    (alert,) = json.loads(ctl("alerts", "list", "--dealer", "CLI-1", "--severity", "critical", "-o", "json", env=api).stdout)
    table = ctl("alerts", "list", "--status", "open", env=api).stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "SEVERITY", "STATUS", "RULE"] and len(table) == 3
    shown = ctl("alerts", "show", alert["alert_id"], env=api)
    assert shown.returncode == 0 and "promotion-over-budget" in shown.stdout and "opened" in shown.stdout

    acked = ctl("alerts", "ack", alert["alert_id"], "--note", "on it", env=api)
    assert acked.returncode == 0 and acked.stdout.strip() == f"{alert['alert_id']}: acknowledged"
    assigned = ctl("alerts", "assign", alert["alert_id"], "--to", "li.na", env=api)
    assert assigned.stdout.strip().endswith("assignee li.na")
    unknown = ctl("alerts", "resolve", alert["alert_id"], "--cause", "no-such-cause", "--note", "x", env=api)
    assert unknown.returncode == 1 and unknown.stderr.startswith("dealerwatch: 422: unknown cause")
    cause = httpx.get(f"{notify.url}/v1/causes", headers={"Authorization": "Bearer viewer-key"}).json()["items"][0]["id"]
    resolved = ctl("alerts", "resolve", alert["alert_id"], "--cause", cause, "--note", "budget raised", env=api)
    assert resolved.returncode == 0 and resolved.stdout.strip().endswith("resolved")
    stored = httpx.get(f"{notify.url}/v1/alerts/{alert['alert_id']}", headers={"Authorization": "Bearer viewer-key"}).json()
    assert (stored["resolved_by"], stored["resolved_cause"], stored["assignee"]) == ("ops.wang", cause, "li.na")
    again = ctl("alerts", "ack", alert["alert_id"], env=api)
    assert again.returncode == 1 and again.stderr.startswith("dealerwatch: 409: alert") and "resolved" in again.stderr
    missing = ctl("alerts", "show", "no-such-alert", env=api)
    assert missing.returncode == 1 and missing.stderr.startswith("dealerwatch: 404:")
    refused = ctl("alerts", "list", env={**api, "DEALERWATCH_KEY": "wrong"})
    assert refused.returncode == 1 and refused.stderr.startswith("dealerwatch: 401: missing or invalid API key")
    viewer = ctl("alerts", "ack", alert["alert_id"], env={**api, "DEALERWATCH_KEY": "viewer-key"})
    assert viewer.returncode == 1 and "403" in viewer.stderr

    config = tmp_path / "dealerwatch" / "config.yaml"  # the config file instead of the environment
    config.parent.mkdir()
    config.write_text(f"url: {notify.url}\nkey: operator-key\nby: ops.li\n")
    from_file = {"XDG_CONFIG_HOME": str(tmp_path)}
    added = ctl("silences", "add", "dealer_id=CLI-2", "--duration", "2h", "--comment", "maintenance", env=from_file)
    assert added.returncode == 0 and "(1 open alerts silenced)" in added.stdout
    silence_id = added.stdout.split()[0]
    (listed,) = json.loads(ctl("silences", "list", "--active", "-o", "json", env=from_file).stdout)
    assert (listed["silence_id"], listed["created_by"], listed["matchers"]["dealer_id"]) == (silence_id, "ops.li", "CLI-2")
    assert ctl("silences", "expire", silence_id, env=from_file).stdout.strip() == f"{silence_id}: expired"
    assert json.loads(ctl("silences", "list", "--active", "-o", "json", env=from_file).stdout) == []
    bad = ctl("silences", "add", "dealer_id=CLI-2", "--duration", "2 hours", "--comment", "x", env=from_file)
    assert bad.returncode == 1 and "--duration" in bad.stderr
    everything = ctl("silences", "add", "colour=red", "--comment", "x", env=from_file)
    assert everything.returncode == 1 and "NAME=VALUE" in everything.stderr


def test_dead_letters_listed_replayed_after_the_fix_and_purged(services, amqp_url, namespace):
    topology = Topology(namespace)
    ingest, rules = services("ingest", "rules", env={"DEALERWATCH_MAX_ATTEMPTS": "2"})
    unbind(amqp_url, topology.alert_signals.name, topology.notify_queue.name)  # the cause: nothing takes signals
    httpx.post(f"{ingest.url}/v1/events", json=over_budget("DLQ-1", now(), "P-1"))
    publish(amqp_url, topology.events.name, "p0.sale.DLQ-9", b'{"type": "sale"}')  # refused: invalid
    wait_for(lambda: queue_depth(amqp_url, topology.dead_letter_queue.name) >= 3, 30)
    broker = {"DEALERWATCH_AMQP_URL": amqp_url, "DEALERWATCH_NAMESPACE": namespace}

    found = json.loads(ctl("dlq", "list", "-o", "json", env=broker).stdout)
    signals = [d for d in found if d["queue"] == "signals" and d["id"].endswith(":firing:1")]
    (signal,) = [d for d in signals if "promotion-over-budget" in d["routing_key"]]
    assert signal["reason"].startswith("not published after 2 tries") and signal["exchange"] == topology.alert_signals.name
    (event,) = json.loads(ctl("dlq", "list", "--queue", "events", "-o", "json", env=broker).stdout)
    assert event["reason"].startswith("invalid event") and event["routing_key"] == "p0.sale.DLQ-9" and event["at"]
    assert queue_depth(amqp_url, topology.dead_letter_queue.name) == len(found)  # listing takes nothing away
    whole = json.loads(ctl("dlq", "show", signal["id"], env=broker).stdout)
    assert whole["body"]["rule_id"] == "promotion-over-budget" and whole["headers"]["x-dealerwatch-stage"] == "rules.output"

    still = ctl("dlq", "replay", "--id", signal["id"], env=broker)  # not fixed yet: unroutable, kept
    assert still.returncode == 1 and "kept" in still.stderr
    bind(amqp_url, topology.alert_signals.name, topology.notify_queue.name, ours=False)  # fixed
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    assert ctl("dlq", "replay", "--queue", "signals", "--all", env=broker).returncode == 0
    (alert,) = wait_for(lambda: httpx.get(f"{notify.url}/v1/alerts", params={"dealer_id": "DLQ-1"}).json()["items"], 30)
    assert alert["rule_id"] == "promotion-over-budget" and alert["severity"] == "critical"

    assert ctl("dlq", "replay", "--reason", "^invalid event", env=broker).returncode == 0
    # refused again by each of the events' consumers (rules, and notify's dealer file and archive, started since)
    back = wait_for(
        lambda: (
            (d := json.loads(ctl("dlq", "list", "--queue", "events", "-o", "json", env=broker).stdout))
            and {x["stage"] for x in d} == {"rules", "notify", "notify.archive"}
            and d
        ),
        30,
    )
    assert {d["routing_key"] for d in back} == {"p0.sale.DLQ-9"} and all(d["reason"].startswith("invalid event") for d in back)
    assert {d["stage"] for d in back} == {"rules", "notify", "notify.archive"}

    kept = ctl("dlq", "purge", "--all", env=broker, stdin="n\n")
    assert kept.returncode == 1 and queue_depth(amqp_url, topology.dead_letter_queue.name) == len(back)
    assert ctl("dlq", "purge", "--all", "--yes", env=broker).stdout.strip() == f"purged {len(back)}"
    assert queue_depth(amqp_url, topology.dead_letter_queue.name) == 0
    assert ctl("dlq", "replay", env=broker).returncode == 1  # nothing named: nothing taken
