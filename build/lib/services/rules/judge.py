"""The one code path from events and time to judgements, for the live service and the backtest.

Before an event at time e is counted, every dealer whose deadline is at or
before e is judged first (in deadline order), exactly as if the clock had
reached e. The live service and the backtest differ only in where events come
from and in what "now" is: wall time live, event time in a replay.
"""

from __future__ import annotations

from services.common.events import Event

from .clock import DeadlineClock
from .core import Output, RulesCore
from .state import ts


class Judge:
    def __init__(self, core: RulesCore, clock: DeadlineClock | None = None):
        self.core = core
        self.clock = clock or DeadlineClock()
        for dealer_id in core.states:
            self.schedule(dealer_id)

    def schedule(self, dealer_id: str) -> None:
        self.clock.schedule(dealer_id, self.core.next_deadline(dealer_id))

    def advance(self, now: float) -> list[Output]:
        """Judge every dealer whose deadline is at or before `now`, at its deadline."""
        outputs: list[Output] = []
        while True:
            due = self.clock.pop_due(now)
            if not due:
                return outputs
            for dealer_id, deadline in due:
                outputs += self.core.tick(dealer_id, deadline)
                self.schedule(dealer_id)

    def handle(self, event: Event, now: float | None = None) -> tuple[list[Output], bool]:
        """(outputs, counted). `now` caps how far the clock may move (wall time, live).
        Raises core.TooLate for an event beyond the lateness bound."""
        at = ts(event.occurred_at)
        outputs = self.advance(at if now is None else min(at, now))
        result = self.core.handle(event)
        if result is None:
            return outputs, False
        self.schedule(event.dealer_id)
        return outputs + result, True

    def finish(self, now: float) -> list[Output]:
        """End of a replay: the clock reaches `now` and every dealer is judged at `now`."""
        outputs = self.advance(now)
        for dealer_id in list(self.core.states):
            outputs += self.core.tick(dealer_id, now)
            self.schedule(dealer_id)
        return outputs
