"""How each receiver is doing, as seen by this notify instance.

A receiver that has MAX_IN_FLIGHT notifications still unanswered, or that failed a moment ago,
is not sent more for now: its deliveries wait (not counted as attempts). So a receiver that
hangs takes at most MAX_IN_FLIGHT of the worker's slots, and the other receivers' notifications
go out at once; one that is down is tried again after a pause that doubles while it stays down.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

MAX_IN_FLIGHT = 4
BUSY_RETRY_SECONDS = 1.0


@dataclass
class _State:
    in_flight: int = 0
    failures: int = 0  # consecutive
    resting_until: dt.datetime | None = None


class ReceiverHealth:
    def __init__(self, initial_seconds: float, max_seconds: float):
        self._initial = initial_seconds
        self._max = max_seconds
        self._receivers: dict[str, _State] = {}

    def wait_until(self, receiver: str, now: dt.datetime) -> dt.datetime | None:
        """None if a notification may be sent now, else when to try again."""
        state = self._receivers.get(receiver)
        if state is None:
            return None
        if state.resting_until is not None and state.resting_until > now:
            return state.resting_until
        if state.in_flight >= MAX_IN_FLIGHT:
            return now + dt.timedelta(seconds=BUSY_RETRY_SECONDS)
        return None

    def started(self, receiver: str) -> None:
        self._receivers.setdefault(receiver, _State()).in_flight += 1

    def finished(self, receiver: str, ok: bool, now: dt.datetime) -> None:
        state = self._receivers[receiver]
        state.in_flight -= 1
        if ok:
            state.failures, state.resting_until = 0, None
        else:
            state.failures += 1
            pause = min(self._initial * 2 ** (state.failures - 1), self._max)
            state.resting_until = now + dt.timedelta(seconds=pause)

    def resting(self, now: dt.datetime) -> int:
        """Receivers resting now (metrics)."""
        return sum(1 for state in self._receivers.values() if state.resting_until is not None and state.resting_until > now)
