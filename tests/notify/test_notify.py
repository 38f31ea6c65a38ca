"""Notify on the real broker and the MongoDB protocol: one alert per episode, whatever happens."""

from __future__ import annotations

import random
import time

import httpx
import pytest
from conftest import free_port, wait_for
from factories import signal
from helpers import WebhookReceiver, drain, publish, queue_depth

from services.common.topology import Topology


def all_alerts(notify) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(f"{notify.url}/v1/alerts", params=params).json()
        items += body["items"]
        if not (cursor := body["next_cursor"]):
            return items


@pytest.fixture
def receiver():
    hook = WebhookReceiver(free_port()).start()
    yield hook
    hook.stop()


def test_no_duplicates_under_redelivery_with_two_instances(services, amqp_url, namespace, receiver):
    first, second = services("notify", "notify", env={"DEALERWATCH_WEBHOOK_URLS": receiver.url})
    bodies = [signal(f"a{n}", count) for n in range(40) for count in (1, 2, 3)]
    bodies += bodies  # every signal redelivered once more
    random.Random(7).shuffle(bodies)
    publish(amqp_url, Topology(namespace).alert_signals.name, "warning.sales-drop.x", *bodies)
    stored = wait_for(
        lambda: (
            (a := all_alerts(first)) and len(a) == 40 and queue_depth(amqp_url, Topology(namespace).notify_queue.name) == 0 and a
        )
    )
    assert sorted(a["alert_id"] for a in stored) == sorted(f"a{n}" for n in range(40))

    def all_at_three():
        current = all_alerts(second)
        return all(a["count"] == 3 for a in current) and current

    final = wait_for(all_at_three)
    assert all(a["summary"] == "firing 3" for a in final)  # the newest firing wins, whatever the order
    wait_for(lambda: len(receiver.received) >= 40)
    delivered = [a["alert_id"] for a in receiver.received]
    assert len(delivered) == len(set(delivered)) == 40  # one first notification per episode


def test_resolved_signal_closes_the_alert_for_good(services, amqp_url, namespace):
    (notify,) = services("notify")
    exchange = Topology(namespace).alert_signals.name
    publish(amqp_url, exchange, "k", signal("r1", 1), signal("r1", 2))
    wait_for(lambda: (a := all_alerts(notify)) and a[0]["count"] == 2)
    publish(amqp_url, exchange, "k", signal("r1", 2, "resolved"), signal("r1", 1))  # a late old firing
    alert = wait_for(lambda: (a := all_alerts(notify)) and a[0]["status"] == "resolved" and a[0])
    assert alert["resolved_at"] and alert["count"] == 2


def test_bad_signals_are_dead_lettered_with_a_reason_after_bounded_attempts(services, amqp_url, namespace):
    (notify,) = services("notify", env={"DEALERWATCH_MAX_ATTEMPTS": "3"})
    # the second cannot be stored (BSON keys cannot hold NUL): retried 3 times, then dead-lettered
    unstorable = signal("x1", 1, details={"bad\x00key": 1})
    sent = time.monotonic()
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", b'{"alert_id": 1}', unstorable, signal("ok", 1))
    wait_for(lambda: queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 2, seconds=20)
    # a pause before each retry (0.2 s, then 0.4: consuming.retry_or_reject), never a hot loop
    assert time.monotonic() - sent >= 0.6
    dead = drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    assert dead[0].headers["x-dealerwatch-error"].startswith("invalid alert signal")
    assert dead[1].headers["x-dealerwatch-error"].startswith("failed 3 times: InvalidDocument")
    assert notify.log_path.read_text().count("failed (attempt ") == 2  # the third attempt dead-letters it
    assert [a["alert_id"] for a in all_alerts(notify)] == ["ok"]  # the good one was not held back
    assert queue_depth(amqp_url, Topology(namespace).notify_queue.name) == 0
