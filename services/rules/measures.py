"""Measures: named values of a dealer (or promotion) at a time t, declared in the policy.

Events feed *sources* (one per distinct event type + filter + field); a source
keeps what its measures need in the dealer state:
- series: (time, value) of matching events, for sum / count / avg / distinct;
- last:   the time of the latest matching event, for days_since;
- latest: (time, value, period) of matching events, for latest.
Several measures share a source (sales_7d and sales_mtd both read sale amounts).

Time enters in two ways, and the clock needs to know when a judgement can change:
- window measures change only when an event enters or leaves a window (or a
  warm-up ends), so their next change is computed exactly from event times;
- ages (days_since, first_seen_days) grow continuously: compared with a number,
  the crossing time is exact; otherwise they are judged at every local midnight.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .calendar import Calendar
from .engine import read_number

if TYPE_CHECKING:
    from services.common.events import Event

    from .state import DealerState

from services.common.durations import DAY

from .keys import SourceKey

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
    "ne": lambda a, b: a != b,
    "in": lambda a, b: a in b,
}


def plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


@dataclass(frozen=True)
class Source:
    key: str
    kind: str  # series | last | latest
    event_type: str
    field: str | None  # None: the value is 1 (count)
    where: tuple[tuple[str, str, Any], ...]
    text: bool = False  # distinct: values are strings

    def matches(self, event: Event) -> bool:
        return all(_OPS[op](plain(getattr(event, name, None)), value) for name, op, value in self.where)

    def value(self, event: Event) -> Any:
        if self.field is None:
            return 1.0
        value = plain(getattr(event, self.field, None))
        return value if self.text or value is None else float(value)


# --- dealer measures ---


@dataclass(frozen=True)
class WindowMeasure:
    name: str
    source: str
    aggregate: str  # sum | count | avg | distinct
    start: float | None  # seconds back; None = month to date
    end: float = 0.0
    divide_by: float = 1.0

    def bounds(self, t: float, calendar: Calendar) -> tuple[float, float, bool]:
        """(lo, hi, lo_included)."""
        if self.start is None:
            return calendar.month_bounds(t)[0], t, True
        return t - self.start, t - self.end, False

    def value(self, state: DealerState, t: float, calendar: Calendar) -> float | None:
        if self.start is not None and (state.first_seen is None or state.first_seen > t - self.start):
            return None  # warm-up: a window of length L does not judge a dealer seen for less than L
        series = state.series.get(self.source)
        lo, hi, included = self.bounds(t, calendar)
        if series is None:
            values: Sequence[float] = []
        else:
            first = (bisect.bisect_left if included else bisect.bisect_right)(series.times, lo)
            values = series.values[first : bisect.bisect_right(series.times, hi)]
        if self.aggregate == "sum":
            result = float(sum(values))
        elif self.aggregate == "count":
            result = float(len(values))
        elif self.aggregate == "distinct":
            result = float(len(set(values)))
        else:
            if not values:
                return None
            result = float(sum(values)) / len(values)
        return result / self.divide_by

    def next_change(self, state: DealerState, t: float) -> float | None:
        candidates = []
        if self.start is not None and state.first_seen is not None and state.first_seen + self.start > t:
            candidates.append(state.first_seen + self.start)  # warm-up ends
        series = state.series.get(self.source)
        if series is not None and self.start is not None:
            for edge in (self.end, self.start):
                # an event at s is inside from s + end until s + start (exclusive)
                index = bisect.bisect_right(series.times, t - edge)
                if index < len(series.times) and series.times[index] + edge > t:  # (not t: a sum rounded to it)
                    candidates.append(series.times[index] + edge)
        return min(candidates) if candidates else None


class WindowEdges:
    """When a policy's windows of fixed length next change, each distinct edge of a source looked
    up once (`sales_7d` and a baseline from 63 to 7 days share the edge at 7 days); the same
    moments as their `next_change`. With a mask for each window (outcomes.py: the comparisons
    reading it), which of them changed between two judgements. Every event a dealer counted is
    at or before its judgement time, so an edge at 0 days (an event entering) is never ahead."""

    def __init__(self, windows: Iterable[tuple[WindowMeasure, int]]):
        by_source: dict[str, dict[float, int]] = {}
        warm_ups: dict[float, int] = {}
        for measure, mask in windows:
            if measure.start is None:
                continue  # month to date: changes at events and midnights
            edges = by_source.setdefault(measure.source, {})
            for edge in (measure.end, measure.start):
                if edge > 0:
                    edges[edge] = edges.get(edge, 0) | mask
            warm_ups[measure.start] = warm_ups.get(measure.start, 0) | mask
        self._edges = [(source, tuple(sorted(edges.items()))) for source, edges in by_source.items()]
        self._warm_ups = sorted(warm_ups.items())

    def next_change(self, state: DealerState, t: float) -> float | None:
        return min((at for at, _ in self._after(state, t)), default=None)

    def changed(self, state: DealerState, since: float, t: float) -> int:
        """The masks of the windows that changed after `since`, up to `t`."""
        found = 0
        for at, mask in self._after(state, since):
            if at <= t:
                found |= mask
        return found

    def _after(self, state: DealerState, t: float) -> Iterator[tuple[float, int]]:
        """(when, mask) of each warm-up's end and each edge's next event after t."""
        if (first_seen := state.first_seen) is not None:
            for start, mask in self._warm_ups:
                if (at := first_seen + start) > t:
                    yield at, mask
        series_of = state.series
        for source, edges in self._edges:
            if (series := series_of.get(source)) is None:
                continue
            times = series.times
            for edge, mask in edges:
                index = bisect.bisect_right(times, t - edge)  # an event at s leaves (or enters) at s + edge
                if index < len(times) and (at := times[index] + edge) > t:  # (not t: a sum rounded to it)
                    yield at, mask


@dataclass(frozen=True)
class DaysSince:
    name: str
    source: str
    or_first_seen: bool = False

    def reference(self, state: DealerState) -> float | None:
        last = state.last.get(self.source)
        return state.first_seen if last is None and self.or_first_seen else last

    def value(self, state: DealerState, t: float, calendar: Calendar) -> float | None:
        ref = self.reference(state)
        return None if ref is None else (t - ref) / DAY


@dataclass(frozen=True)
class FirstSeenDays:
    name: str = "first_seen_days"

    def reference(self, state: DealerState) -> float | None:
        return state.first_seen

    def value(self, state: DealerState, t: float, calendar: Calendar) -> float | None:
        return None if state.first_seen is None else (t - state.first_seen) / DAY


@dataclass(frozen=True)
class Latest:
    name: str
    source: str
    by_month: bool = False

    def value(self, state: DealerState, t: float, calendar: Calendar) -> float | None:
        month = calendar.month_key(t) if self.by_month else None
        for at, value, period in reversed(state.latest_values.get(self.source, ())):
            if at <= t and (month is None or period == month):
                return value
        return None


@dataclass(frozen=True)
class Calendrical:
    """day_of_month, month_fraction_elapsed: step or grow with the calendar."""

    name: str

    def value(self, state: DealerState, t: float, calendar: Calendar) -> float:
        if self.name == "day_of_month":
            return float(calendar.day_of_month(t))
        start, end = calendar.month_bounds(t)
        return (t - start) / (end - start)


class DealerValues(Mapping[str, float]):
    """The dealer measures at time t (the defined ones), each worked out the first time it is
    asked for: a judgement whose comparisons cannot have changed needs few of them (outcomes.py).
    Read within the judgement, before the state changes again."""

    __slots__ = ("_measures", "state", "t", "_known", "_all", "read")

    def __init__(self, measures: dict[str, Any], state: DealerState, t: float, calendar: Calendar):
        self._measures, self.state, self.t = measures, state, t
        self._known = _Known(measures, state, t, calendar)
        self._all: dict[str, float] | None = None
        # a value as the engine reads it (an infinity as the largest double, NaN as none)
        self.read: Callable[[str], float | None] = _Read(self._known).__getitem__

    def get(self, name: str, default: Any = None) -> Any:
        value = self._known[name]
        return default if value is None else value

    def __getitem__(self, name: str) -> float:
        value = self._known[name]
        if value is None:
            raise KeyError(name)
        return value

    def all(self) -> dict[str, float]:
        """Every defined measure, in the policy's order (what `RulesCore.measures_of` gives)."""
        if self._all is None:
            known = self._known
            self._all = {name: value for name in self._measures if (value := known[name]) is not None}
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self.all())


class _Known(dict[str, "float | None"]):
    """The measures' values (None: undefined), each worked out at its first lookup (then a
    lookup is a dictionary's)."""

    __slots__ = ("_measures", "_state", "_t", "_calendar")

    def __init__(self, measures: dict[str, Any], state: DealerState, t: float, calendar: Calendar):
        super().__init__()
        self._measures, self._state, self._t, self._calendar = measures, state, t, calendar

    def __missing__(self, name: str) -> float | None:
        measure = self._measures.get(name)
        value = self[name] = None if measure is None else measure.value(self._state, self._t, self._calendar)
        return value


class _Read(dict[str, "float | None"]):
    """The values as the engine reads them, each at its first lookup."""

    __slots__ = ("_known",)

    def __init__(self, known: _Known):
        super().__init__()
        self._known = known

    def __missing__(self, name: str) -> float | None:
        value = self[name] = read_number(self._known[name])
        return value


BUILTIN_DEALER_MEASURES = {
    "first_seen_days": FirstSeenDays(),
    "day_of_month": Calendrical("day_of_month"),
    "month_fraction_elapsed": Calendrical("month_fraction_elapsed"),
}  # and the network's (network.DEALER_MEASURES)
AGES = (DaysSince, FirstSeenDays)

# Net sales of the dealer (amounts, returns included): promotions are judged on it.
NET_SALES = Source(str(SourceKey("series", "sale", "amount")), "series", "sale", "amount", ())

PROMOTION_MEASURES = (
    "promotion_budget",
    "promotion_spend",
    "promotion_planned",
    "promotion_approved",
    "promotion_days",
    "promotion_sales",
    "promotion_sales_before",
    "promotion_net_effect",
    "promotion_roi",
    "promotion_expected_sales",
    "promotion_elapsed",
    "promotion_ended",
)
