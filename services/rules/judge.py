"""The one code path from events and time to judgements, for the live service and the backtest.

A dealer is judged at each of its events and at each of its deadlines (core.next_deadline),
always in time order: before an event is counted, the dealer's own deadlines up to the event's
time are judged first. Dealers are independent, so this is all that live runs and replays need
to agree; the clock decides only when a dealer's deadlines are judged *without* an event of its
own. A replay judges everyone up to `now` at the end. Live (service.py):

- the clock is wall time minus a grace period: an event at most `grace` old when it arrives is
  judged as it happened;
- an older event is *history*: its dealer is *held*, i.e. taken off the wall-time clock, because
  more of its history may be on the way (a backfill between two requests, or queued while rules
  was down). A held dealer is judged at its own events, and up to what its history (the events
  of the same `source`) has reached minus the grace, once that history has moved past the
  dealer's own last event: a backfill in time order judges a dealer that fell silent as it goes,
  as a replay would. The hold ends when no event arrived for the dealer for `hold_seconds`, or
  when a live event arrives for it. A history is remembered only while it holds a dealer, and
  at most MAX_HISTORIES of them (the one that went longest without an event is let go: its
  dealers stay held, judged at their own events until their hold ends): `source` is free text,
  and the histories are stored with the partition's clock (#22: 110,000 sources outgrew it).

A dealer whose judgement fails (a bug, or a value the engine cannot take) is left as it was
before that judgement and *set aside*: the clock skips it, every other dealer goes on, and it
is tried again after a policy reload or a restart (or at its next event).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from services.common.events import Event
from services.common.limits import MAX_HISTORIES

from .clock import DeadlineClock
from .core import RulesCore
from .metrics import JUDGED
from .signals import Output
from .state import Hold, ts, utc

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
    def __init__(
        self,
        core: RulesCore,
        clock: DeadlineClock | None = None,
        *,
        grace: float = 0.0,
        hold_seconds: float | None = None,
        dealers: Iterable[str] | None = None,
    ):
        """grace, hold_seconds: live only (None: a replay, nothing is held).
        dealers: the dealers of the core this judge keeps the clock of (live: one partition's);
        None: all of them."""
        self.core = core
        self.clock = clock or DeadlineClock()  # dealers that are not held
        self.grace = grace
        self.hold_seconds = hold_seconds
        self.set_aside: dict[str, SetAside] = {}
        # source -> newest event time of its history, the one updated last at the end
        self.history: dict[str, float] = {}
        self._held_clocks: dict[str, DeadlineClock] = {}  # source -> deadlines of the dealers it holds
        self._holding: dict[str, int] = {}  # source -> how many dealers it holds
        # (hold end, dealer), one entry per held dealer: a hold that was extended is pushed again
        # when its old end comes, so a backfill does not grow the heap by an entry per event
        self._hold_ends: list[tuple[float, str]] = []
        self._hold_queued: set[str] = set()  # dealers with an entry in _hold_ends
        self._held: dict[str, str] = {}  # held dealer -> the source whose clock it is on
        self._moved: set[str] = set()  # sources whose history moved on since their held dealers were judged
        for dealer_id in core.states if dealers is None else dealers:
            self.schedule(dealer_id)

    def schedule(self, dealer_id: str) -> None:
        """Put the dealer's next deadline on the clock it follows (none if it is set aside)."""
        state = self.core.states[dealer_id]
        hold = state.hold
        deadline = None
        if dealer_id not in self.set_aside:
            try:
                deadline = self.core.next_deadline(dealer_id)
            except Exception as exc:  # noqa: BLE001 - one dealer must not stop the clock for all
                self._put_aside(dealer_id, state.latest or 0.0, exc)
        source = self._held.get(dealer_id)
        if source is not None and (hold is None or hold.source != source):
            self._held_clocks[source].schedule(dealer_id, None)
            del self._held[dealer_id]
            self._let_go(source)
        if hold is None:
            self.clock.schedule(dealer_id, deadline)
            return
        self.clock.schedule(dealer_id, None)
        if self._held.get(dealer_id) != hold.source:
            self._held[dealer_id] = hold.source
            self._holding[hold.source] = self._holding.get(hold.source, 0) + 1
        if dealer_id not in self._hold_queued:
            self._hold_queued.add(dealer_id)
            heapq.heappush(self._hold_ends, (hold.until, dealer_id))
        self._held_clocks.setdefault(hold.source, DeadlineClock()).schedule(dealer_id, deadline)

    def _let_go(self, source: str) -> None:
        """A dealer left the source's hold: with none left, the history is forgotten."""
        self._holding[source] -= 1
        if not self._holding[source]:
            del self._holding[source], self._held_clocks[source]
            self.history.pop(source, None)
            self._moved.discard(source)

    def _moved_on(self, source: str, newest: float) -> None:
        self.history.pop(source, None)
        self.history[source] = newest  # the most recently updated last
        while len(self.history) > MAX_HISTORIES:
            oldest = next(iter(self.history))
            del self.history[oldest]
            self._moved.discard(oldest)
            log.warning("history %r let go: more than %d histories at once", oldest[:64], MAX_HISTORIES)

    def restore_history(self, saved: Iterable[tuple[str, float]]) -> None:
        """The histories the partition's last owner stored, of the dealers still held."""
        for source, newest in saved:
            if source in self._holding:
                self._moved_on(source, max(newest, self.history.get(source, newest)))

    # --- time ---

    def advance(self, now: float, limit: int | None = None) -> list[Output]:
        """Judge every dealer not held whose deadline is at or before `now`, at its deadline
        (at most `limit` judgements: the live clock gives the event loop a turn in between)."""
        outputs: list[Output] = []
        done = 0
        while (limit is None or done < limit) and (due := self.clock.pop_due(now, limit=None if limit is None else limit - done)):
            for dealer_id, deadline in due:
                outputs += self._tick(dealer_id, deadline, self.core.deadline_kinds.pop(dealer_id, "midnight"))
            done += len(due)
        return outputs

    def follow_histories(self, limit: int | None = None) -> list[Output]:
        """Held dealers whose own last event their history has since moved past: judged up to
        the history's newest event time minus the grace (at most `limit` judgements; call again
        while `histories_moved`)."""
        outputs: list[Output] = []
        done = 0
        for source in list(self._moved):
            clock, newest = self._held_clocks.get(source), self.history.get(source)
            if newest is None:
                self._moved.discard(source)
                continue
            waiting = []  # the history has not moved past these yet
            while clock is not None and (limit is None or done < limit):
                due = clock.pop_due(newest - self.grace, limit=1)
                if not due:
                    break
                dealer_id, deadline = due[0]
                hold = self.core.states[dealer_id].hold
                if hold is not None and hold.mark >= newest:
                    waiting.append(due[0])
                    continue
                outputs += self._tick(dealer_id, deadline, self.core.deadline_kinds.pop(dealer_id, "midnight"))
                done += 1
            for dealer_id, deadline in waiting:
                assert clock is not None
                clock.schedule(dealer_id, deadline)
            if limit is not None and done >= limit:
                break  # this history may have more: the next call goes on
            self._moved.discard(source)
        return outputs

    @property
    def histories_moved(self) -> bool:
        return bool(self._moved)

    def release_holds(self, wall: float) -> int:
        """End the holds that ran out by wall time `wall`: those dealers follow the clock again."""
        released = 0
        while self._hold_ends and self._hold_ends[0][0] <= wall:
            _, dealer_id = heapq.heappop(self._hold_ends)
            self._hold_queued.discard(dealer_id)
            state = self.core.states.get(dealer_id)
            hold = None if state is None else state.hold
            if hold is None:
                continue  # ended by a live event
            if hold.until > wall:  # extended since
                self._hold_queued.add(dealer_id)
                heapq.heappush(self._hold_ends, (hold.until, dealer_id))
                continue
            assert state is not None
            state.hold = None
            self.core.dirty.add(dealer_id)
            self.schedule(dealer_id)
            released += 1
        return released

    def next_hold_end(self) -> float | None:
        return self._hold_ends[0][0] if self._hold_ends else None

    def held(self) -> int:
        return len(self._held)

    def extend_holds(self, until: float, dealers: Iterable[str] | None = None) -> None:
        """After a restart: events of held dealers may still wait in the queue, unseen."""
        for dealer_id in self.core.states if dealers is None else dealers:
            state = self.core.states[dealer_id]
            if state.hold is not None and state.hold.until < until:
                state.hold.until = until
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
        outputs, _ = self.catch_up(dealer_id, at)
        try:
            result = self.core.handle(event)
        except Exception as exc:
            raise Refused(exc, outputs) from exc
        if result is None:
            return outputs, False
        JUDGED["event"].inc()
        outputs += result
        moved = None
        if arrived is not None and self.hold_seconds is not None:
            state = self.core.states[dealer_id]
            if arrived - at > self.grace:  # history: more of it may come
                source = event.source or ""
                newest = self.history.get(source)
                if newest is None or at > newest:
                    newest = at
                    moved = source
                self._moved_on(source, newest)
                state.hold = Hold(arrived + self.hold_seconds, source, newest)
            else:
                state.hold = None
        if self.set_aside.pop(dealer_id, None) is not None:
            log.info("dealer %s judged again after being set aside", dealer_id)
        self.schedule(dealer_id)
        if moved is not None:
            self._moved.add(moved)  # its held dealers are judged by follow_histories (the clock)
        return outputs, True

    def catch_up(self, dealer_id: str, at: float, limit: int | None = None) -> tuple[list[Output], bool]:
        """(outputs, finished): the dealer's own deadlines before `at`, in order, at most `limit`
        of them (a dealer silent for years has thousands of midnights: the live service gives the
        event loop a turn in between). A deadline at `at` itself is the event's own judgement: judged
        without the event, a sale at the moment last week's leaves the window opened and resolved an
        alert in the same second."""
        outputs: list[Output] = []
        done = 0
        while (state := self.core.states.get(dealer_id)) is not None and dealer_id not in self.set_aside:
            clock = self.clock if state.hold is None else self._held_clocks[state.hold.source]
            deadline = clock.deadline(dealer_id)
            if deadline is None or deadline >= at:
                break
            if limit is not None and done >= limit:
                return outputs, False
            self.core.deadline_kinds.pop(dealer_id, None)
            outputs += self._tick(dealer_id, deadline, "catch-up")
            done += 1
        return outputs, True

    # --- failures ---

    def _tick(self, dealer_id: str, t: float, trigger: str = "midnight") -> list[Output]:
        try:
            outputs = self.core.tick(dealer_id, t)
            JUDGED[trigger].inc()
        except Exception as exc:  # noqa: BLE001 - one dealer must not stop the clock for all
            self._put_aside(dealer_id, t, exc)
            return []
        self.schedule(dealer_id)
        return outputs

    def _put_aside(self, dealer_id: str, t: float, exc: Exception) -> None:
        self.set_aside[dealer_id] = SetAside(dealer_id, t, f"{type(exc).__name__}: {exc}")
        self.clock.schedule(dealer_id, None)
        if (source := self._held.get(dealer_id)) is not None:
            self._held_clocks[source].schedule(dealer_id, None)
        log.error("judging dealer %s at %s failed; it is set aside", dealer_id, utc(t).isoformat(), exc_info=exc)

    def retry_set_aside(self) -> int:
        """After a policy reload: dealers set aside are judged by the clock again."""
        dealers, self.set_aside = list(self.set_aside), {}
        for dealer_id in dealers:
            if dealer_id in self.core.states:
                self.schedule(dealer_id)
        return len(dealers)
