"""Per-route noise control: resolved notices, reminders while open, escalation of critical
alerts nobody acknowledged; all through the outbox, on the real broker and MongoDB protocol."""

from __future__ import annotations

import datetime as dt
import json
import time

import httpx
import pytest
from conftest import free_port, routes_file, wait_for
from factories import signal
from helpers import WebhookReceiver, publish

from services.common.topology import Topology

ROUTES = """version: 1
receivers:
  team: {webhook: {url_env: DEALERWATCH_RECEIVER_TEAM_HOOK}}
  boss: {webhook: {url_env: DEALERWATCH_RECEIVER_BOSS_HOOK}}
route:
  receiver: team
  send_resolved: true
  routes:
    - match: {rule_id: reminded}
      repeat_interval: 1s
    - match: {severity: critical}
      escalate_after: 2s
      escalate_to: [boss]
    - match: {rule_id: grouped}
      group_wait: 3s
"""


@pytest.fixture
def stack(services, tmp_path):
    team, boss = WebhookReceiver(free_port()).start(), WebhookReceiver(free_port()).start()
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    (notify,) = services(
        "notify",
        env={
            "DEALERWATCH_ROUTES_FILE": str(path),
            "DEALERWATCH_RECEIVER_TEAM_HOOK": team.url,
            "DEALERWATCH_RECEIVER_BOSS_HOOK": boss.url,
        },
    )
    yield notify, team, boss
    team.stop()
    boss.stop()


def kinds(receiver, alert_id):
    return [a["notification"] for a in receiver.received if a.get("alert_id") == alert_id]


def times(receiver, alert_id) -> list[float]:
    return [t for a, t in zip(receiver.received, receiver.times, strict=True) if a.get("alert_id") == alert_id]


def test_resolved_notice_follows_the_route(stack, amqp_url, namespace):
    notify, team, boss = stack
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("E1", 1))
    wait_for(lambda: kinds(team, "E1") == ["firing"])
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("E1", 1, "resolved"))
    wait_for(lambda: kinds(team, "E1") == ["firing", "resolved"])
    assert [a["status"] for a in team.received] == ["open", "resolved"]


def test_reminders_while_open_stop_when_resolved(stack, amqp_url, namespace):
    notify, team, boss = stack
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("E2", 1, rule_id="reminded"))
    wait_for(lambda: kinds(team, "E2").count("repeat") >= 2, seconds=15)
    httpx.post(f"{notify.url}/v1/alerts/E2/resolve", json={"by": "li.na", "cause": "fixed"}).raise_for_status()
    wait_for(lambda: "resolved" in kinds(team, "E2"))
    settled = len(kinds(team, "E2"))
    # a marker on the same route, opened after the resolve: once its first reminder is out, any
    # reminder of E2 (due within the 1 s interval after its last) would have been sent before it
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("E2-marker", 1, rule_id="reminded"))
    wait_for(lambda: "repeat" in kinds(team, "E2-marker"))
    assert len(kinds(team, "E2")) == settled  # no reminder after the resolve
    sent = kinds(team, "E2")
    assert sent[0] == "firing" and sent[1:3] == ["repeat", "repeat"]
    at = times(team, "E2")
    pauses = [later - earlier for earlier, later in zip(at[:2], at[1:3], strict=True)]
    assert all(0.95 <= pause <= 4.0 for pause in pauses), pauses  # repeat_interval: 1s (never sooner)


def test_unacknowledged_critical_alert_escalates_acknowledged_does_not(stack, amqp_url, namespace):
    notify, team, boss = stack
    publish(
        amqp_url,
        Topology(namespace).alert_signals.name,
        "k",
        signal("E3", 1, severity="critical"),
        signal("E4", 1, severity="critical"),
    )
    wait_for(lambda: httpx.get(f"{notify.url}/v1/alerts/E4").status_code == 200)
    httpx.post(f"{notify.url}/v1/alerts/E4/ack", json={"by": "wang"}).raise_for_status()
    # a marker opened after E4: its escalation is due after E4's would have been
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("E4-marker", 1, severity="critical"))
    wait_for(lambda: kinds(boss, "E3") == ["escalation"], seconds=15)
    wait_for(lambda: kinds(boss, "E4-marker") == ["escalation"], seconds=15)
    assert kinds(boss, "E4") == []
    # escalate_after: 2s from the first notification, not sooner, and not much later
    waited = times(boss, "E3")[0] - times(team, "E3")[0]
    assert 1.9 <= waited <= 4.0, waited
    deliveries = httpx.get(f"{notify.url}/v1/alerts/E3").json()["deliveries"]
    assert [(d["kind"], d["receiver"], d["status"]) for d in deliveries] == [
        ("firing", "team", "delivered"),
        ("escalation", "boss", "delivered"),
    ]


def test_a_silence_stops_firing_notices_reminders_and_escalation_of_routed_alerts(stack, amqp_url, namespace):
    notify, team, boss = stack
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    silence = {"matchers": {"dealer_id": "D-quiet"}, "ends_at": ends, "created_by": "zhao.lei", "comment": "closed this week"}
    assert httpx.post(f"{notify.url}/v1/silences", json=silence).status_code == 201
    exchange = Topology(namespace).alert_signals.name
    publish(
        amqp_url,
        exchange,
        "k",
        signal("S1", 1, rule_id="reminded", dealer_id="D-quiet"),
        signal("S2", 1, severity="critical", dealer_id="D-quiet"),
    )
    # markers after them on the same routes: their reminder and escalation are due after S1's and S2's
    publish(amqp_url, exchange, "k", signal("S1-marker", 1, rule_id="reminded"), signal("S2-marker", 1, severity="critical"))
    wait_for(lambda: kinds(team, "S1-marker").count("repeat") >= 2, seconds=15)
    wait_for(lambda: kinds(boss, "S2-marker") == ["escalation"], seconds=15)
    assert kinds(team, "S1") == kinds(team, "S2") == kinds(boss, "S2") == []
    for alert_id in ("S1", "S2"):
        alert = httpx.get(f"{notify.url}/v1/alerts/{alert_id}").json()
        assert alert["silenced_by"] and alert["status"] == "open"


def test_alerts_within_the_group_window_go_out_as_one_message(stack, amqp_url, namespace):
    notify, team, boss = stack
    time.sleep(3.0 - time.time() % 3.0 + 0.1)  # just after a window starts: the three arrive within it
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", *[signal(f"G{n}", 1, rule_id="grouped") for n in range(3)])
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("E5", 1))  # another route: not held back
    wait_for(lambda: kinds(team, "E5") == ["firing"])
    assert not [body for body in team.received if "alerts" in body]  # the window is still open
    wait_for(lambda: [body for body in team.received if "alerts" in body], seconds=10)
    # a marker in the next window: its group comes after any second message of the first window
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("G-marker", 1, rule_id="grouped"))
    wait_for(lambda: "G-marker" in json.dumps(team.received), seconds=10)  # (alone, it goes as one alert)
    groups = [body for body in team.received if "alerts" in body and "G-marker" not in json.dumps(body)]
    assert len(groups) == 1 and groups[0]["count"] == 3 and groups[0]["notification"] == "firing"
    assert sorted(a["alert_id"] for a in groups[0]["alerts"]) == ["G0", "G1", "G2"]
    assert not [body for body in team.received if body.get("alert_id", "") in ("G0", "G1", "G2")]  # not one by one as well
    for n in range(3):  # each alert's delivery log says it went out
        (delivery,) = httpx.get(f"{notify.url}/v1/alerts/G{n}").json()["deliveries"]
        assert delivery["status"] == "delivered" and delivery["group"].startswith("team|")


def test_a_hanging_receiver_does_not_hold_up_the_others(services, amqp_url, namespace, tmp_path, hooks):
    """Every alert goes to a receiver that hangs and to one that works: the working one gets
    them all at once, not one timeout after another, and the hanging one is retried later."""
    from helpers import HangingReceiver

    hanging, team = hooks(HangingReceiver), hooks()
    path = routes_file(
        tmp_path,
        """version: 1
receivers:
  stuck: {webhook: {url_env: DEALERWATCH_RECEIVER_STUCK_HOOK}}
  team: {webhook: {url_env: DEALERWATCH_RECEIVER_TEAM_HOOK}}
route:
  receiver: team
  routes:
    - {receiver: stuck, continue: true}
    - {receiver: team}
""",
    )
    (notify,) = services(
        "notify",
        env={
            "DEALERWATCH_ROUTES_FILE": path,
            "DEALERWATCH_RECEIVER_STUCK_HOOK": hanging.url,
            "DEALERWATCH_RECEIVER_TEAM_HOOK": team.url,
            "DEALERWATCH_DELIVERY_TIMEOUT_SECONDS": "10",
        },
    )
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", *[signal(f"H{n}", 1) for n in range(30)])
    wait_for(lambda: len(httpx.get(f"{notify.url}/v1/alerts", params={"limit": 100}).json()["items"]) == 30)
    # held up behind the hanging receiver, nothing would reach the team before its first timeout (10 s)
    wait_for(lambda: len(team.received) == 30, seconds=8)
    stuck = httpx.get(f"{notify.url}/v1/alerts/H29").json()["deliveries"][0]
    assert stuck["receiver"] == "stuck" and stuck["status"] == "pending"
    # a receiver that hangs gets no more than 4 unanswered notifications at once (health.py), not all 30
    assert 1 <= hanging.requests <= 4
