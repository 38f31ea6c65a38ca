"""Per-route noise control: resolved notices, reminders while open, escalation of critical
alerts nobody acknowledged; all through the outbox, on the real broker and MongoDB protocol."""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import free_port, routes_file, wait_for
from factories import signal
from helpers import WebhookReceiver, publish

from services.common.topology import Topology

ROUTES = """version: 1
receivers:
  team: {webhook: {url_env: TEAM_HOOK}}
  boss: {webhook: {url_env: BOSS_HOOK}}
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
    (notify,) = services("notify", env={"DEALERWATCH_ROUTES_FILE": str(path), "TEAM_HOOK": team.url, "BOSS_HOOK": boss.url})
    yield notify, team, boss
    team.stop()
    boss.stop()


def kinds(receiver, alert_id):
    return [a["notification"] for a in receiver.received if a.get("alert_id") == alert_id]


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
    time.sleep(2.5)
    assert len(kinds(team, "E2")) == settled  # no reminder after the resolve
    assert kinds(team, "E2")[0] == "firing"


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
    wait_for(lambda: kinds(boss, "E3") == ["escalation"], seconds=15)
    time.sleep(1.0)
    assert kinds(boss, "E4") == []
    deliveries = httpx.get(f"{notify.url}/v1/alerts/E3").json()["deliveries"]
    assert [(d["kind"], d["receiver"], d["status"]) for d in deliveries] == [
        ("firing", "team", "delivered"),
        ("escalation", "boss", "delivered"),
    ]


def test_alerts_within_the_group_window_go_out_as_one_message(stack, amqp_url, namespace):
    notify, team, boss = stack
    time.sleep(3.0 - time.time() % 3.0 + 0.1)  # just after a window starts: the three arrive within it
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", *[signal(f"G{n}", 1, rule_id="grouped") for n in range(3)])
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("E5", 1))  # another route: not held back
    wait_for(lambda: kinds(team, "E5") == ["firing"])
    assert not [body for body in team.received if "alerts" in body]  # the window is still open
    groups = wait_for(lambda: [body for body in team.received if "alerts" in body], seconds=10)
    time.sleep(0.5)
    assert len(groups) == 1 and groups[0]["count"] == 3 and groups[0]["notification"] == "firing"
    assert sorted(a["alert_id"] for a in groups[0]["alerts"]) == ["G0", "G1", "G2"]
    assert not [body for body in team.received if body.get("alert_id", "").startswith("G")]  # not one by one as well
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
  stuck: {webhook: {url_env: STUCK_HOOK}}
  team: {webhook: {url_env: TEAM_HOOK}}
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
            "STUCK_HOOK": hanging.url,
            "TEAM_HOOK": team.url,
            "DEALERWATCH_DELIVERY_TIMEOUT_SECONDS": "5",
        },
    )
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", *[signal(f"H{n}", 1) for n in range(30)])
    wait_for(lambda: len(httpx.get(f"{notify.url}/v1/alerts", params={"limit": 100}).json()["items"]) == 30)
    # one timeout is 5 s; one after another (8 at a time) would take 4 timeouts, 20 s
    wait_for(lambda: len(team.received) == 30, seconds=4)
    stuck = httpx.get(f"{notify.url}/v1/alerts/H29").json()["deliveries"][0]
    assert stuck["receiver"] == "stuck" and stuck["status"] == "pending"
    assert hanging.requests < 30  # a receiver that hangs is left alone for a while, not sent everything
