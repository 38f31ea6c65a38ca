"""A receiver that hangs or is down does not hold up the others (notify/health.py)."""

from __future__ import annotations

import datetime as dt

from services.notify.health import BUSY_RETRY_SECONDS, MAX_IN_FLIGHT, ReceiverHealth

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_a_receiver_with_too_many_unanswered_notifications_waits_and_the_others_do_not():
    health = ReceiverHealth(initial_seconds=1, max_seconds=30)
    for _ in range(MAX_IN_FLIGHT):
        assert health.wait_until("slow", NOW) is None
        health.started("slow")
    assert health.wait_until("slow", NOW) == NOW + dt.timedelta(seconds=BUSY_RETRY_SECONDS)
    assert health.wait_until("fast", NOW) is None
    health.finished("slow", ok=True, now=NOW)
    assert health.wait_until("slow", NOW) is None


def test_a_receiver_that_is_down_rests_for_a_pause_that_doubles_up_to_the_maximum_and_recovers():
    health = ReceiverHealth(initial_seconds=1, max_seconds=5)
    pauses = []
    for _ in range(5):
        health.started("down")
        health.finished("down", ok=False, now=NOW)
        pauses.append((health.wait_until("down", NOW) - NOW).total_seconds())
    assert pauses == [1, 2, 4, 5, 5]
    assert health.wait_until("down", NOW + dt.timedelta(seconds=5)) is None  # rested: tried again
    health.started("down")
    health.finished("down", ok=True, now=NOW)
    health.started("down")
    health.finished("down", ok=False, now=NOW)
    assert health.wait_until("down", NOW) == NOW + dt.timedelta(seconds=1)  # a success starts over
