"""The outcomes of the dealer rules' comparisons, kept from one judgement of a dealer to the next
and worked out again only for the comparisons whose inputs can have changed (#26).

Which dealer rules hold is a function of the outcomes of their comparisons alone (one bit each:
`expressions.outcome_key`; engine.Matcher keeps the engine's answer for each). Between two
judgements of a dealer with no event in between (a deadline of the clock), a measure changes:
- a window (sum, count, average, distinct) or the outlet coverage: when an event enters or
  leaves it, or its warm-up ends: at its `next_change`, known exactly;
- a month-to-date window, a `latest` by month, `day_of_month`: at a local midnight;
- a `latest` without a period, `dealer_registered`: never (only events change them);
- an age (`days_since`, `first_seen_days`) and `month_fraction_elapsed`: at any moment; but an
  age compared with a number (`days_since_sale > 21`) comes out differently only once it
  crosses that number, at a time known from the age's reference (an event's time).
A comparison whose measures cannot have changed, or whose age has not crossed its number, keeps
the outcome it had; every other one is worked out again, on the values of now. An event also
changes the measures of the sources it feeds (`Changes`), the network's (`dealer_registered`,
the outlet coverage) when it is about the network, and every measure when it moves the dealer's
first time seen (the warm-ups, `first_seen_days`).

The outcomes live in the dealer's state (`DealerState.outcomes`) and are never stored: after a
load, a failed judgement or a new policy they are worked out whole. `RulesCore(exhaustive=True)`
works every comparison out at every judgement: the definition this must equal (a test compares
every output of whole histories).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.common.durations import DAY

from . import expressions as ex
from .calendar import Calendar
from .measures import AGES, Calendrical, DaysSince, DealerValues, Latest, WindowEdges, WindowMeasure
from .network import OutletCoverage, Registered
from .state import DealerState

NextChange = Callable[[DealerState, float], "float | None"]
Reference = Callable[[DealerState], "float | None"]
# An age's comparison with a number is worked out again when the crossing time is this close to
# the span between two judgements: its outcome is a step of time (of rounded arithmetic that
# is monotonic), which steps within rounding (a millionth of a second) of the crossing.
SLACK = 1.0


@dataclass(frozen=True, slots=True)
class Changes:
    """What an event changed of the dealer's measures."""

    sources: list[str]  # the keys of the sources it fed
    network: bool  # the dealer's registration or its outlets
    first_seen: bool  # the dealer's first time seen moved


def _changes(measure: Any) -> str | NextChange:
    """When the measure can change without an event: "never", "midnight", "always", or its
    `next_change` (a window)."""
    if isinstance(measure, Registered) or (isinstance(measure, Latest) and not measure.by_month):
        return "never"
    if isinstance(measure, Latest) or (isinstance(measure, Calendrical) and measure.name == "day_of_month"):
        return "midnight"
    if isinstance(measure, WindowMeasure):
        return "midnight" if measure.start is None else measure.next_change
    if isinstance(measure, OutletCoverage):
        return measure.next_change
    return "always"  # ages, the share of the month elapsed, and anything not known here


class Outcomes:
    """The comparisons of one scope's rules (in the order of `expressions.comparisons`, the bits
    of `expressions.outcome_key`) and what can change each of them."""

    def __init__(self, conditions: list[ex.Condition], measures: dict[str, Any]):
        nodes = ex.comparisons(conditions)
        self._tests = [ex.comparison_test(node) for node in nodes]
        self.everything = (1 << len(nodes)) - 1
        self._always = self._at_midnight = 0
        windows: dict[str, tuple[NextChange, int]] = {}  # measure -> its next change, the comparisons reading it
        fixed: dict[str, tuple[WindowMeasure, int]] = {}  # the windows of a fixed length among them
        self._crossings: list[tuple[Reference, float, int]] = []  # an age's reference, the number in seconds, the bit
        self._by_source: dict[str, int] = {}  # source key -> the comparisons reading a measure of it
        self._network = 0  # the comparisons reading a measure of the network
        for bit, node in enumerate(nodes):
            for name in ex.measures_of(node):
                measure = measures.get(name)
                if isinstance(measure, WindowMeasure | Latest | DaysSince):
                    self._by_source[measure.source] = self._by_source.get(measure.source, 0) | 1 << bit
                elif isinstance(measure, OutletCoverage | Registered):
                    self._network |= 1 << bit
            crossing = _crossing(node, measures)
            if crossing is not None:
                self._crossings.append((*crossing, 1 << bit))
                continue
            for name in ex.measures_of(node):
                changes = _changes(measures.get(name))
                if changes == "always":
                    self._always |= 1 << bit
                elif changes == "midnight":
                    self._at_midnight |= 1 << bit
                elif isinstance(measure := measures[name], WindowMeasure):
                    window, mask = fixed.get(name, (measure, 0))
                    fixed[name] = (window, mask | 1 << bit)
                elif callable(changes):
                    next_change, mask = windows.get(name, (changes, 0))
                    windows[name] = (next_change, mask | 1 << bit)
        self._windows = list(windows.values())
        self._fixed = WindowEdges(fixed.values())

    def key(
        self, values: DealerValues, previous: int | None, since: float | None, calendar: Calendar, event: Changes | None = None
    ) -> int:
        """The outcomes at the time of `values`. previous: those at `since`, the dealer's last
        judgement (None: work every comparison out); event: what the event counted since then
        changed (none: a deadline)."""
        everything = previous is None or (event is not None and event.first_seen)
        if everything or since is None:  # (a dealer judged before has both)
            dirty = self.everything
        else:
            t, state = values.t, values.state
            dirty = self._always
            if self._at_midnight and t >= calendar.next_midnight(since):
                dirty |= self._at_midnight
            dirty |= self._fixed.changed(state, since, t)
            for next_change, mask in self._windows:
                if dirty & mask != mask:  # (not known to have changed already)
                    change = next_change(state, since)
                    if change is not None and change <= t:
                        dirty |= mask
            for reference, after, bit in self._crossings:
                if (at := reference(state)) is not None and since - SLACK <= at + after <= t + SLACK:
                    dirty |= bit
            if event is not None:
                for key in event.sources:
                    dirty |= self._by_source.get(key, 0)
                if event.network:
                    dirty |= self._network
        bits = 0 if previous is None else previous & ~dirty
        lookup = values.read
        tests = self._tests
        while dirty:
            low = dirty & -dirty
            if tests[low.bit_length() - 1](lookup):
                bits |= low
            dirty ^= low
        return bits


def _crossing(node: ex.Compare, measures: dict[str, Any]) -> tuple[Reference, float] | None:
    """(the age's reference, the number in seconds) of a comparison of an age with a number."""
    for side, other in ((node.left, node.right), (node.right, node.left)):
        if isinstance(side, ex.Measure) and isinstance(other, ex.Number):
            measure = measures.get(side.name)
            if isinstance(measure, AGES):
                return measure.reference, other.value * DAY
    return None
