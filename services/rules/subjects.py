"""Which outlets and plans of a dealer a judgement looks at: those that can have changed.

An outlet's or plan's measures change only when an event changes it, and with time (its age);
a rule compares an age with a number, so the moment its outcome can change is known ahead
(the crossing). A judgement at time t therefore judges:
- the outlets and plans its event changed,
- those with a crossing at or before t (`SubjectDeadlines`, a heap per dealer),
- at the first judgement of a local day: those with an open episode (their alert's values are
  brought up to date once a day), and every one for a rule that compares an age with something
  other than a number (its crossings are not known ahead),
- after a policy change: every one, once.
So a judgement costs what changed, not every outlet and plan the dealer holds (#22: 20,000 plans
were quadratic). The heap is derived: never stored, rebuilt when missing (a load, a failed
judgement, a policy change).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from services.common.durations import DAY

from . import network
from .calendar import Calendar
from .state import DealerState

SubjectKey = tuple[str, str]  # (scope, subject id)
Crossings = dict[str, tuple[tuple[str, float, float], ...]]  # scope -> (age, days, seconds after) of its rules


class SubjectDeadlines:
    """The next crossing of each outlet and plan that has one: a heap, earliest first, whose
    entries are checked against the current crossing of their subject (older ones are stale)."""

    __slots__ = ("_heap", "_at")

    def __init__(self) -> None:
        self._heap: list[tuple[float, SubjectKey]] = []
        self._at: dict[SubjectKey, float] = {}

    def set(self, key: SubjectKey, at: float | None) -> None:
        if at is None:
            self._at.pop(key, None)
            return
        if self._at.get(key) == at:
            return
        self._at[key] = at
        heapq.heappush(self._heap, (at, key))
        if len(self._heap) > 2 * len(self._at) + 64:  # mostly stale: start again from the current ones
            self._heap = [(when, subject) for subject, when in self._at.items()]
            heapq.heapify(self._heap)

    def next(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, t: float) -> list[SubjectKey]:
        due = []
        while (at := self.next()) is not None and at <= t:
            _, key = heapq.heappop(self._heap)
            del self._at[key]
            due.append(key)
        return due

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._at.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)


def next_crossing(subject: network.Subject, crossings: Iterable[tuple[str, float, float]], t: float) -> float | None:
    """The first moment after t at which one of the subject's ages crosses a rule's number."""
    best = None
    for name, days, offset in crossings:
        reference = subject.references.get(name)
        if reference is not None and (at := reference + days * DAY + offset) > t and (best is None or at < best):
            best = at
    return best


def deadlines_of(state: DealerState, crossings: Crossings, t: float, calendar: Calendar) -> SubjectDeadlines:
    """The dealer's heap, built from every outlet and plan as they stand at t if it is missing."""
    deadlines = state.subject_deadlines
    if deadlines is None:
        deadlines = state.subject_deadlines = SubjectDeadlines()
        for scope, of_scope in crossings.items():
            for subject_id in network.subject_ids(state, scope) if of_scope else ():
                subject = network.SUBJECT[scope](state, subject_id, t, calendar)
                if subject is not None:
                    deadlines.set((scope, subject_id), next_crossing(subject, of_scope, t))
    assert isinstance(deadlines, SubjectDeadlines)
    return deadlines
