"""Per-promotion measures: budget, spend, approval, and the effectiveness evaluation
(P = net sales during the promotion, S = net sales in as many days before it, X = spend)."""

from __future__ import annotations

import bisect
import datetime as dt

from .calendar import Calendar
from .measures import NET_SALES
from .state import DealerState, Promotion


def net_sales(state: DealerState, lo: float, hi: float) -> float:
    """Net sales with time in [lo, hi)."""
    series = state.series.get(NET_SALES.key)
    if series is None:
        return 0.0
    return float(sum(series.values[bisect.bisect_left(series.times, lo) : bisect.bisect_left(series.times, hi)]))


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
    if promotion.starts_on and promotion.ends_on:
        starts_on = dt.date.fromisoformat(promotion.starts_on)
        ends_on = dt.date.fromisoformat(promotion.ends_on)
        days = (ends_on - starts_on).days + 1
        start = calendar.day_start(starts_on)
        during = net_sales(state, start, calendar.day_start(ends_on + dt.timedelta(days=1)))
        before = net_sales(state, calendar.day_start(starts_on - dt.timedelta(days=days)), start)
        values.update(
            promotion_days=float(days),
            promotion_sales=during,
            promotion_sales_before=before,
            promotion_net_effect=during - before,
        )
        if promotion.spend > 0:
            values["promotion_roi"] = (during - before) / promotion.spend
    return values
