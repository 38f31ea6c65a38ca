"""The one code path from events and time to judgements, for the live service and the backtest.

A dealer is judged at each of its events and at each of its deadlines (core.next_deadline),
always in time order: before an event is counted, the dealer's own deadlines up to the event's
time are judged first. Dealers are independent, so this is all that live runs and replays need
to agree; the clock decides only when the *other* dealers' deadlines are judged:
- a replay judges everyone up to each event's time, then up to `now` at the end;
- live, the clock is the wall time minus a grace period (service.py), and a dealer whose
  events arrive as history (older than the grace) is *held*: judged at its own events only,
  not beyond them, until no event arrived for it for `hold_seconds`. A pause in a backfill, or
  a restart during one, therefore never judges a dealer at "now" with half its history.

A dealer whose judgement fails (a bug, or a value the engine cannot take) is left as it was
before that judgement and *set aside*: the clock skips it, every other dealer goes on, and it
is tried again after a policy reload or a restart (or at its next event).
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass

from services.common.events import Event

from .clock import DeadlineClock
from .core import Output, RulesCore
from .state import ts, utc

log = logging.getLogger("dealerwatch.rules.judge")


@dataclass(frozen=True)
class SetAside:
    dealer_id: str
    at: float  # the judgement time that failed
    reason: str


class Refused(Exception):
    """The event was not counted (`cause`: core.TooLate, or the error its judgement raised);
    `outputs` are judgements of the dealer's deadlines made before it, to be kept."""

    def __init__(self, cause: BaseException, outputs: list[Output]):
        super().__init__(str(cause))
        self.cause = cause
        self.outputs = outputs


class Judge:
    def __init__(self, core: RulesCore, clock: DeadlineClock | None = None, *, grace: float = 0.0, hold_seconds: float | None = None):
        """grace, hold_seconds: live only (None: a replay, nothing is held)."""
        self.core = core
        self.clock = clock or DeadlineClock()
        self.grace = grace
        self.hold_seconds = hold_seconds
        self.set_aside: dict[str, SetAside] = {}
        # (hold end, dealer), one entry per held dealer: a hold that was extended is pushed again
        # when its old end comes, so a backfill does not grow the heap by an entry per event
        self._holds: list[tuple[float, str]] = []
        self._held: set[str] = set()
        for dealer_id in core.states:
            self.schedule(dealer_id)

    def schedule(self, dealer_id: str) -> None:
        state = self.core.states[dealer_id]
        deadline = None
        if dealer_id in self.set_aside:
            pass
        elif state.hold_until is not None:
            if dealer_id not in self._held:
                self._held.add(dealer_id)
                heapq.heappush(self._holds, (state.hold_until, dealer_id))
        else:  # judged at its own events only while held
            try:
                deadline = self.core.next_deadline(dealer_id)
            except Exception as exc:  # noqa: BLE001 - one dealer must not stop the clock for all
                self._put_aside(dealer_id, state.latest or 0.0, exc)
        self.clock.schedule(dealer_id, deadline)

    # --- time ---

    def advance(self, now: float) -> list[Output]:
        """Judge every dealer whose deadline is at or before `now`, at its deadline."""
        outputs: list[Output] = []
        while due := self.clock.pop_due(now):
            for dealer_id, deadline in due:
                outputs += self._tick(dealer_id, deadline)
        return outputs

    def release_holds(self, wall: float) -> int:
        """End the holds that ran out by wall time `wall`: those dealers follow the clock again."""
        released = 0
        while self._holds and self._holds[0][0] <= wall:
            _, dealer_id = heapq.heappop(self._holds)
            state = self.core.states.get(dealer_id)
            until = None if state is None else state.hold_until
            if until is not None and until > wall:
                heapq.heappush(self._holds, (until, dealer_id))  # extended since
                continue
            self._held.discard(dealer_id)
            if until is not None:
                state.hold_until = None
                self.core.dirty.add(dealer_id)
                self.schedule(dealer_id)
                released += 1
        return released

    def next_hold_end(self) -> float | None:
        return self._holds[0][0] if self._holds else None

    def held(self) -> int:
        return sum(1 for state in self.core.states.values() if state.hold_until is not None)

    def extend_holds(self, until: float) -> None:
        """After a restart: events of held dealers may still wait in the queue, unseen."""
        for dealer_id, state in self.core.states.items():
            if state.hold_until is not None and state.hold_until < until:
                state.hold_until = until
                self.schedule(dealer_id)

    def finish(self, now: float) -> list[Output]:
        """End of a replay: the clock reaches `now` and every dealer is judged at `now`."""
        outputs = self.advance(now)
        for dealer_id in list(self.core.states):
            outputs += self._tick(dealer_id, now)
        return outputs

    # --- events ---

    def handle(self, event: Event, arrived: float | None = None) -> tuple[list[Output], bool]:
        """(outputs, counted). `arrived`: the wall time the event arrived (live), for holds.
        Raises Refused if the event cannot be counted (too late, or its judgement failed)."""
        dealer_id = event.dealer_id
        at = ts(event.occurred_at)
        outputs = self._catch_up(dealer_id, at)
        try:
            result = self.core.handle(event)
        except Exception as exc:  # noqa: BLE001 - the dealer is as it was; the caller decides
            raise Refused(exc, outputs) from exc
        if result is None:
            return outputs, False
        if arrived is not None and self.hold_seconds is not None:
            state = self.core.states[dealer_id]
            state.hold_until = arrived + self.hold_seconds if arrived - at > self.grace else None
        if self.set_aside.pop(dealer_id, None) is not None:
            log.info("dealer %s judged again after being set aside", dealer_id)
        self.schedule(dealer_id)
        return outputs + result, True

    def _catch_up(self, dealer_id: str, at: float) -> list[Output]:
        """The dealer's own deadlines up to `at`, in order (a held dealer is not on the clock)."""
        outputs: list[Output] = []
        while (state := self.core.states.get(dealer_id)) is not None and dealer_id not in self.set_aside:
            held = state.hold_until is not None
            deadline = self.core.next_deadline(dealer_id) if held else self.clock.deadline(dealer_id)
            if deadline is None or deadline > at:
                break
            outputs += self._tick(dealer_id, deadline)
        return outputs

    # --- failures ---

    def _tick(self, dealer_id: str, t: float) -> list[Output]:
        try:
            outputs = self.core.tick(dealer_id, t)
        except Exception as exc:  # noqa: BLE001 - one dealer must not stop the clock for all
            self._put_aside(dealer_id, t, exc)
            return []
        self.schedule(dealer_id)
        return outputs

    def _put_aside(self, dealer_id: str, t: float, exc: Exception) -> None:
        self.set_aside[dealer_id] = SetAside(dealer_id, t, f"{type(exc).__name__}: {exc}")
        self.clock.schedule(dealer_id, None)
        log.error("judging dealer %s at %s failed; it is set aside", dealer_id, utc(t).isoformat(), exc_info=exc)

    def retry_set_aside(self) -> int:
        """After a policy reload: dealers set aside are judged by the clock again."""
        dealers, self.set_aside = list(self.set_aside), {}
        for dealer_id in dealers:
            if dealer_id in self.core.states:
                self.schedule(dealer_id)
        return len(dealers)
