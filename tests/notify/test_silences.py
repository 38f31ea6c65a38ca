"""Silences mute sending, not storing; webhook bodies are signed with the shared secret."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from conftest import free_port, wait_for
from factories import signal
from helpers import WebhookReceiver, publish

from services.common.topology import Topology

KEY = {"Authorization": "Bearer ops-key"}


@pytest.fixture
def receiver():
    hook = WebhookReceiver(free_port(), secrets=[b"shared-secret"]).start()
    yield hook
    hook.stop()


def test_silenced_alerts_are_stored_marked_and_not_sent(services, amqp_url, namespace, receiver):
    (notify,) = services(
        "notify",
        env={
            "DEALERWATCH_WEBHOOK_URLS": receiver.url,
            "DEALERWATCH_API_KEYS": "ops-key",
            "DEALERWATCH_WEBHOOK_SECRET": "shared-secret",
        },
    )
    now = dt.datetime.now(dt.UTC)
    body = {
        "matchers": {"dealer_id": "D-Q1", "severity": "warning"},
        "ends_at": (now + dt.timedelta(hours=2)).isoformat(),
        "created_by": "zhao.lei",
        "comment": "dealer on holiday, known",
    }
    assert httpx.post(f"{notify.url}/v1/silences", json=body).status_code == 401
    assert httpx.post(f"{notify.url}/v1/silences", json={**body, "matchers": {}}, headers=KEY).status_code == 422
    for ends_at in ("9999-12-31T00:00:00Z", (now + dt.timedelta(days=30, minutes=1)).isoformat()):  # for good: refused
        forever = httpx.post(f"{notify.url}/v1/silences", json={**body, "ends_at": ends_at}, headers=KEY)
        assert forever.status_code == 422 and "at most 30 days" in forever.json()["detail"]
    created = httpx.post(f"{notify.url}/v1/silences", json=body, headers=KEY)
    assert created.status_code == 201
    silence = created.json()
    assert [
        s["silence_id"] for s in httpx.get(f"{notify.url}/v1/silences", params={"active": True}, headers=KEY).json()["items"]
    ] == [silence["silence_id"]]

    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("Q1", 1), signal("Q2", 1))  # dealers D-Q1 and D-Q2
    muted = wait_for(lambda: (r := httpx.get(f"{notify.url}/v1/alerts/Q1", headers=KEY)).status_code == 200 and r.json())
    assert muted["silenced_by"] == [silence["silence_id"]] and muted["deliveries"][0]["status"] == "silenced"
    wait_for(lambda: receiver.received)
    assert [a["alert_id"] for a in receiver.received] == ["Q2"]  # signed correctly: accepted
    assert receiver.refused == 0

    expired = httpx.post(f"{notify.url}/v1/silences/{silence['silence_id']}/expire", json={"by": "zhao.lei"}, headers=KEY)
    assert expired.status_code == 200 and expired.json()["expired_by"] == "zhao.lei"
    assert httpx.get(f"{notify.url}/v1/silences", params={"active": True}, headers=KEY).json()["items"] == []
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("Q3", 1, dealer_id="D-Q1"))
    wait_for(lambda: len(receiver.received) == 2)
    assert receiver.received[-1]["alert_id"] == "Q3"


def test_a_wrong_secret_is_refused_by_the_receiver(services, amqp_url, namespace, receiver):
    (notify,) = services("notify", env={"DEALERWATCH_WEBHOOK_URLS": receiver.url, "DEALERWATCH_WEBHOOK_SECRET": "other"})
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("W1", 1))

    def attempted():
        answer = httpx.get(f"{notify.url}/v1/alerts/W1", headers=KEY)  # 404 until the signal is stored
        return answer.status_code == 200 and (d := answer.json()["deliveries"][0])["attempts"] >= 1 and d

    failing = wait_for(attempted)
    assert failing["last_error"] == "HTTP 401" and receiver.received == [] and receiver.refused >= 1


def test_a_silence_mutes_the_open_alerts_it_matches(services, amqp_url, namespace):
    """The receiver is down, so the alert's first notification is still being retried when
    someone silences it: the retries stop, the alert is marked, and the change is streamed."""
    dead_end = f"http://127.0.0.1:{free_port()}/hook"
    (notify,) = services("notify", env={"DEALERWATCH_WEBHOOK_URLS": dead_end})
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("M1", 1), signal("M2", 1))
    wait_for(
        lambda: (
            (r := httpx.get(f"{notify.url}/v1/alerts/M1", headers=KEY)).status_code == 200
            and r.json()["deliveries"][0]["attempts"] >= 1
        )
    )
    wait_for(lambda: httpx.get(f"{notify.url}/v1/alerts/M2", headers=KEY).status_code == 200)
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    created = httpx.post(
        f"{notify.url}/v1/silences",
        json={"matchers": {"dealer_id": "D-M1"}, "ends_at": ends, "created_by": "zhao.lei", "comment": "dealer closed this week"},
    )
    assert created.status_code == 201 and created.json()["open_alerts_silenced"] == 1

    muted = wait_for(
        lambda: (a := httpx.get(f"{notify.url}/v1/alerts/M1", headers=KEY).json())["deliveries"][0]["status"] == "silenced" and a
    )
    assert muted["silenced_by"] == [created.json()["silence_id"]]
    assert muted["history"][-1]["action"] == "silenced" and muted["history"][-1]["by"] == "zhao.lei"
    attempts = muted["deliveries"][0]["attempts"]

    def tried(alert_id: str) -> int:
        return httpx.get(f"{notify.url}/v1/alerts/{alert_id}", headers=KEY).json()["deliveries"][0]["attempts"]

    # M2 (another dealer, the same dead end, the same retry pauses) is the marker: tried twice
    # more, M1 would have been tried again by now
    marker = tried("M2")
    wait_for(lambda: tried("M2") >= marker + 2)
    assert tried("M1") == attempts
    other = httpx.get(f"{notify.url}/v1/alerts/M2", headers=KEY).json()
    assert "silenced_by" not in other and other["deliveries"][0]["status"] == "pending"
