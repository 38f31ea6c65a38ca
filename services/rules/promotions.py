"""Per-promotion measures: budget, spend, approval, and the effectiveness evaluation
(P = net sales during the promotion, S = net sales in as many days before it, X = spend).

A promotion that is never ended is closed a lateness after its last day: no sale of its days
or of the days before it can be counted any more, so P and S are final; they are kept on the
promotion and the dealer's sales no longer need to reach back to its start."""

from __future__ import annotations

import bisect
import datetime as dt
from typing import TYPE_CHECKING

from .calendar import Calendar
from .measures import NET_SALES
from .state import DealerState, Promotion, Undo

if TYPE_CHECKING:
    from .policy import Policy


def net_sales(state: DealerState, lo: float, hi: float) -> float:
    """Net sales with time in [lo, hi)."""
    series = state.series.get(NET_SALES.key)
    if series is None:
        return 0.0
    return float(sum(series.values[bisect.bisect_left(series.times, lo) : bisect.bisect_left(series.times, hi)]))


def periods(promotion: Promotion, calendar: Calendar) -> tuple[float, float, float] | None:
    """(start of the days before it, its start, its end): S is [before, start), P [start, end)."""
    if not (promotion.starts_on and promotion.ends_on):
        return None
    starts_on, ends_on = dt.date.fromisoformat(promotion.starts_on), dt.date.fromisoformat(promotion.ends_on)
    days = (ends_on - starts_on).days + 1
    return (
        calendar.day_start(starts_on - dt.timedelta(days=days)),
        calendar.day_start(starts_on),
        calendar.day_start(ends_on + dt.timedelta(days=1)),
    )


def sales_needed_from(promotion: Promotion, calendar: Calendar) -> float | None:
    """The oldest sale an open promotion still needs (its S period starts there)."""
    if promotion.sales_during is not None:
        return None
    found = periods(promotion, calendar)
    return None if found is None else found[0]


def freeze_if_final(state: DealerState, promotion_id: str, promotion: Promotion, t: float, policy: Policy, undo: Undo) -> None:
    """Close a promotion never ended once its P and S are final (a lateness after its end)."""
    found = periods(promotion, policy.calendar)
    if found is None or t < found[2] + policy.lateness:
        return
    before, start, end = found
    undo.entry(state.promotions, promotion_id)
    promotion.sales_during, promotion.sales_before = net_sales(state, start, end), net_sales(state, before, start)
    promotion.closed_at = t


def promotion_measures(promotion: Promotion, state: DealerState, t: float, calendar: Calendar) -> dict[str, float]:
    values: dict[str, float] = {
        "promotion_spend": promotion.spend,
        "promotion_planned": 1.0 if promotion.budget is not None else 0.0,
        "promotion_approved": 1.0 if promotion.approved_at is not None and promotion.approved_at <= t else 0.0,
    }
    if promotion.budget is not None:
        values["promotion_budget"] = promotion.budget
    if promotion.expected_sales is not None:
        values["promotion_expected_sales"] = promotion.expected_sales
    found = periods(promotion, calendar)
    if found is not None:
        before, start, end = found
        if promotion.sales_during is not None and promotion.sales_before is not None:  # closed: final
            during, earlier = promotion.sales_during, promotion.sales_before
        else:
            during, earlier = net_sales(state, start, end), net_sales(state, before, start)
        days = float(promotion.days() or 0)
        today, starts_on = calendar.local(t).date(), dt.date.fromisoformat(promotion.starts_on or "")
        passed = min(max((today - starts_on).days, 0), days)  # whole days gone by before today
        over = promotion.over is not None and promotion.over <= t
        values.update(
            promotion_days=days,
            promotion_elapsed=passed / days if days else 0.0,
            promotion_ended=1.0 if over or t >= end else 0.0,
            promotion_sales=during,
            promotion_sales_before=earlier,
            promotion_net_effect=during - earlier,
        )
        if promotion.spend > 0:
            values["promotion_roi"] = (during - earlier) / promotion.spend
    return values
