"""A notification a receiver fails is retried after pauses that double from the first retry delay
up to the longest, read from the alert's own delivery log; after the last attempt it is given up.
The receiver takes other notifications meanwhile, so it is never resting as a whole (that pause,
ReceiverHealth, is tested in test_receiver_health.py): the pauses are the delivery's own."""

from __future__ import annotations

import datetime as dt
import json
import threading

import httpx
from conftest import free_port, routes_file, wait_for
from factories import signal
from helpers import FailingReceiver, drain, publish

from services.common.topology import Topology

FIRST, LONGEST, ATTEMPTS = 0.4, 1.6, 5


def test_retries_of_a_failed_notification_wait_twice_as_long_each_time_up_to_the_longest(services, amqp_url, namespace, tmp_path):
    failing = FailingReceiver(free_port(), failing={"B1"}).start()
    path = routes_file(
        tmp_path,
        "version: 1\nreceivers:\n  down: {webhook: {url_env: DEALERWATCH_RECEIVER_DOWN_HOOK}}\nroute: {receiver: down}\n",
    )
    settings = {
        "DEALERWATCH_ROUTES_FILE": path,
        "DEALERWATCH_RECEIVER_DOWN_HOOK": failing.url,
        "DEALERWATCH_DELIVERY_RETRY_INITIAL_SECONDS": str(FIRST),
        "DEALERWATCH_DELIVERY_RETRY_MAX_SECONDS": str(LONGEST),
        "DEALERWATCH_DELIVERY_MAX_ATTEMPTS": str(ATTEMPTS),
    }
    (notify,) = services("notify", env=settings)
    exchange = Topology(namespace).alert_signals.name
    publish(amqp_url, exchange, "k", signal("B1", 1))
    done = threading.Event()

    def others() -> None:  # a notification the receiver takes every 0.1 s
        n = 0
        while not done.wait(0.1):
            n += 1
            publish(amqp_url, exchange, "k", signal(f"OK{n}", 1))

    threading.Thread(target=others, daemon=True).start()

    def given_up() -> dict | None:
        response = httpx.get(f"{notify.url}/v1/alerts/B1")
        deliveries = response.json()["deliveries"] if response.status_code == 200 else []
        return deliveries[0] if deliveries and deliveries[0]["status"] == "failed" else None

    try:
        delivery = wait_for(given_up, seconds=30)
    finally:
        done.set()
        failing.stop()
    attempts = [dt.datetime.fromisoformat(entry["at"]) for entry in delivery["log"]]
    assert len(attempts) == ATTEMPTS == len(failing.failed)
    assert all("503" in entry["outcome"] for entry in delivery["log"])
    pauses = [(later - earlier).total_seconds() for earlier, later in zip(attempts, attempts[1:], strict=False)]
    expected = [0.4, 0.8, 1.6, 1.6]  # doubling from FIRST, capped at LONGEST
    for pause, wanted in zip(pauses, expected, strict=True):
        # never sooner; later by at most the sender's wake-up on a busy machine
        assert wanted * 0.95 <= pause <= wanted + 1.0, (pauses, expected)
    assert failing.taken >= len(pauses)  # it took others between the retries: it was not resting
    # given up: kept in the dead-letter queue with the reason, for a replay
    (dead,) = wait_for(lambda: drain(amqp_url, Topology(namespace).dead_letter_queue.name))
    assert dead.headers["x-dealerwatch-error"].startswith(f"delivery to down failed {ATTEMPTS} times:")
    assert json.loads(dead.body)["alert"]["alert_id"] == "B1"


def test_a_receiver_that_fails_everything_rests_as_a_whole(services, amqp_url, namespace, tmp_path):
    """After a failure the receiver rests (0.4 s, then 0.8), whatever alert comes next: twelve
    alerts for a receiver that is down do not each try it on their own schedule."""
    failing = FailingReceiver(free_port()).start()
    path = routes_file(
        tmp_path,
        "version: 1\nreceivers:\n  down: {webhook: {url_env: DEALERWATCH_RECEIVER_DOWN_HOOK}}\nroute: {receiver: down}\n",
    )
    settings = {
        "DEALERWATCH_ROUTES_FILE": path,
        "DEALERWATCH_RECEIVER_DOWN_HOOK": failing.url,
        "DEALERWATCH_DELIVERY_RETRY_INITIAL_SECONDS": "0.4",
        "DEALERWATCH_DELIVERY_RETRY_MAX_SECONDS": "0.8",
    }
    services("notify", env=settings)
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", *(signal(f"R{n}", 1) for n in range(12)))
    try:
        wait_for(lambda: len(failing.failed) >= 6, seconds=30)
    finally:
        failing.stop()
    at = sorted(failing.failed)
    # at most its 4 unanswered at once (health.py), then a rest: never more within 0.3 s
    busiest = max(sum(1 for t in at if start <= t < start + 0.3) for start in at)
    assert busiest <= 4, busiest
