"""The measures rules are written over, computed from a dealer's state at a time t.

Two shapes, because they change with time differently:
- window measures (net sales over a window ending at or before t) change only
  when an event enters or leaves the window, so their next change is known
  exactly from the event times;
- age measures (days since something) grow continuously, so a rule compares
  them with a constant and the crossing time is computed from that constant.
The clock wakes a dealer at the earliest of these times; nothing is rescanned.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable

from .state import DAY, DealerState, Promotion


@dataclass(frozen=True)
class WindowSum:
    """Net sales with time in (t - start_days, t - end_days], divided by `divisor`."""

    name: str
    start_days: float
    end_days: float = 0.0
    divisor: float = 1.0
    description: str = ""

    def value(self, state: DealerState, t: float) -> float:
        return state.net_sales(t - self.start_days * DAY, t - self.end_days * DAY) / self.divisor

    def next_change(self, state: DealerState, t: float) -> float | None:
        """Earliest time after t at which a sale enters or leaves the window."""
        best = None
        for edge in (self.end_days * DAY, self.start_days * DAY):
            # a sale at s is inside from s + end (entering) until s + start (leaving)
            for s, _ in _sales_after(state, t - edge):
                if s + edge > t:
                    best = s + edge if best is None else min(best, s + edge)
                    break
        return best


@dataclass(frozen=True)
class Age:
    """Days from a reference time of the state to t (undefined while there is none)."""

    name: str
    reference: Callable[[DealerState], float | None]
    description: str = ""

    def value(self, state: DealerState, t: float) -> float | None:
        ref = self.reference(state)
        return None if ref is None else (t - ref) / DAY

    def crossing(self, state: DealerState, days: float, strict: bool) -> float | None:
        """When the age first exceeds (strict) or reaches `days`."""
        ref = self.reference(state)
        if ref is None:
            return None
        # clock resolution is one second: "more than N days" first holds one second after N days
        return ref + days * DAY + (1.0 if strict else 0.0)


def _sales_after(state: DealerState, moment: float):
    index = bisect.bisect_right(state.sales, (moment, float("inf")))
    return state.sales[index:]


def _last_visit_or_first_seen(state: DealerState) -> float | None:
    return state.last_visit_at if state.last_visit_at is not None else state.first_seen


DEALER_MEASURES: dict[str, WindowSum | Age] = {
    m.name: m
    for m in (
        WindowSum("sales_7d", 7, description="net sales in (t-7d, t]"),
        WindowSum("sales_baseline_weekly", 63, 7, 8, description="net sales in (t-63d, t-7d] / 8"),
        Age("first_seen_days", lambda s: s.first_seen, description="days since the dealer's first event"),
        Age("days_since_visit", _last_visit_or_first_seen, description="days since the last visit (or first seen)"),
    )
}

# Measures of one promotion; they change only when one of its events arrives.
PROMOTION_MEASURES: dict[str, Callable[[Promotion], float | None]] = {
    "promotion_spend": lambda p: p.spend,
    "promotion_budget": lambda p: p.budget,
}

# How far back any dealer measure looks: older sales and event ids can be forgotten.
HORIZON_SECONDS = max(
    (m.start_days for m in DEALER_MEASURES.values() if isinstance(m, WindowSum)), default=0
) * DAY + DAY


def dealer_measures(state: DealerState, t: float) -> dict[str, float]:
    values = {name: m.value(state, t) for name, m in DEALER_MEASURES.items()}
    return {name: value for name, value in values.items() if value is not None}


def promotion_measures(promotion: Promotion) -> dict[str, float]:
    values = {name: fn(promotion) for name, fn in PROMOTION_MEASURES.items()}
    return {name: value for name, value in values.items() if value is not None}
