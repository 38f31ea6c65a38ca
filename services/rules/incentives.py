"""Rebates and annual awards (#24): the policy's `incentives:` programs judged while there is
still time. A `scope: incentive` rule is judged per program and period (one episode each) at the
first judgement of each local day and at every sale or target, on:

    incentive_sales        net sales of the period so far
    incentive_rate         the rate of the tier reached (0 below the first)
    incentive_accrued      sales x rate, 0 while the gate is not met
    incentive_next_from    the next tier's `from` (none on the top tier)
    incentive_next_gap     sales still needed for the next tier (none on the top tier)
    incentive_days_left    whole days of the period after today (0 on its last day)
    incentive_elapsed      days of the period gone by, today included, as a share of its days
    incentive_gate_target  gate x the sum of the targets set for the period's months (none
                           without a gate or without any target: a month without one adds 0)
    incentive_projected    sales / elapsed

The state keeps net sales and the latest sales target by local month (the current and the
previous year at most), whatever the programs: a reload that adds one judges it at once.
A period's result (`results`) is what its measures were on its last day.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.common.events import Event, Sale, TargetSet

from .calendar import Calendar

if TYPE_CHECKING:
    from .spec import IncentiveSpec
    from .state import DealerState, Undo

SCOPE = "incentive"
MEASURES = (
    "incentive_sales",
    "incentive_rate",
    "incentive_accrued",
    "incentive_next_from",
    "incentive_next_gap",
    "incentive_days_left",
    "incentive_elapsed",
    "incentive_gate_target",
    "incentive_projected",
)
NAMES = {"program_id", "period"}
MONTHS_KEPT = 24


@dataclass(frozen=True)
class Period:
    key: str  # 2026-11, 2026-Q4, 2026
    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def months(self) -> tuple[str, ...]:
        return _months(self.first, self.last)


@functools.lru_cache(maxsize=64)
def _months(first: dt.date, last: dt.date) -> tuple[str, ...]:
    found, day = [], first
    while day <= last:
        found.append(sys.intern(f"{day.year:04d}-{day.month:02d}"))
        day = _next_month(day)
    return tuple(found)


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def period_of(day: dt.date, kind: str) -> Period:
    if kind == "month":
        first, key = day.replace(day=1), f"{day.year:04d}-{day.month:02d}"
        return Period(key, first, _next_month(first) - dt.timedelta(days=1))
    if kind == "quarter":
        quarter = (day.month - 1) // 3
        first = dt.date(day.year, 3 * quarter + 1, 1)
        return Period(
            f"{day.year:04d}-Q{quarter + 1}", first, _next_month(_next_month(_next_month(first))) - dt.timedelta(days=1)
        )
    return Period(f"{day.year:04d}", dt.date(day.year, 1, 1), dt.date(day.year, 12, 31))


def subject_id(program_id: str, period: Period) -> str:
    return f"{program_id}@{period.key}"


def apply(state: DealerState, event: Event, at: float, calendar: Calendar, undo: Undo) -> bool:
    """Count a sale in its local month, or a month's target (the latest set wins); True if so."""
    if isinstance(event, Sale):
        month = sys.intern(calendar.month_key(at))  # one string for every dealer's month
        if state.month_sales is None:
            state.month_sales = {}
        undo.entry(state.month_sales, month)
        state.month_sales[month] = state.month_sales.get(month, 0.0) + float(event.amount)
        return True
    if isinstance(event, TargetSet):
        if state.month_targets is None:
            state.month_targets = {}
        kept = state.month_targets.get(event.period)
        if kept is None or at >= kept[0]:
            undo.entry(state.month_targets, event.period)
            state.month_targets[sys.intern(event.period)] = (at, float(event.sales_target))
        return True
    return False


def prune(state: DealerState, t: float, calendar: Calendar, undo: Undo) -> None:
    """Months before the previous year are forgotten (no program reaches them)."""
    oldest = f"{calendar.local(t).year - 1:04d}-01"
    for kept in (state.month_sales, state.month_targets):
        for month in [m for m in kept or () if m < oldest]:
            assert kept is not None
            undo.entry(kept, month)
            del kept[month]
    if state.month_sales is not None and not state.month_sales:
        state.month_sales = None
    if state.month_targets is not None and not state.month_targets:
        state.month_targets = None


def measures(state: DealerState, program: IncentiveSpec, period: Period, today: dt.date) -> dict[str, float]:
    """The program's measures for the period as of `today` (its last day once it is over)."""
    day = min(max(today, period.first), period.last)
    months = period.months()
    sales = sum((state.month_sales or {}).get(m, 0.0) for m in months)
    rate, next_from = 0.0, None
    for tier in program.tiers:
        if sales >= tier.from_:
            rate = tier.rate
        elif next_from is None:
            next_from = tier.from_
    targets = [kept[1] for m in months if (kept := (state.month_targets or {}).get(m)) is not None]
    gate_target = None if program.gate is None or not targets else program.gate * sum(targets)
    elapsed = ((day - period.first).days + 1) / period.days
    values = {
        "incentive_sales": sales,
        "incentive_rate": rate,
        "incentive_accrued": 0.0 if gate_target is not None and sales < gate_target else sales * rate,
        "incentive_days_left": float((period.last - day).days),
        "incentive_elapsed": elapsed,
        "incentive_projected": sales / elapsed,
    }
    if next_from is not None:
        values.update(incentive_next_from=next_from, incentive_next_gap=next_from - sales)
    if gate_target is not None:
        values["incentive_gate_target"] = gate_target
    return values


def current(programs: list[IncentiveSpec], t: float, calendar: Calendar) -> dict[str, tuple[IncentiveSpec, Period]]:
    """Subject id -> (program, period) of the periods running at t."""
    today = calendar.local(t).date()
    found = {}
    for program in programs:
        period = period_of(today, program.period)
        found[subject_id(program.id, period)] = (program, period)
    return found


def view(state: DealerState, programs: list[IncentiveSpec], t: float, calendar: Calendar, past: int = 4) -> list[dict[str, Any]]:
    """The dealer file's section: each program's running period and its past periods' results."""
    today = calendar.local(t).date()
    shown = []
    for program in programs:
        period = period_of(today, program.period)
        results, before = [], period
        for _ in range(past):
            before = period_of(before.first - dt.timedelta(days=1), program.period)
            if not set(before.months()) & set(state.month_sales or {}):
                break  # nothing kept of it
            values = measures(state, program, before, before.last)
            results.append({"period": before.key, **_shown(values)})
        shown.append(
            {
                "program_id": program.id,
                "period": period.key,
                "ends_on": period.last.isoformat(),
                **_shown(measures(state, program, period, today)),
                "past": results,
            }
        )
    return shown


def _shown(values: dict[str, float]) -> dict[str, Any]:
    return {
        "sales": values["incentive_sales"],
        "rate": values["incentive_rate"],
        "accrued": values["incentive_accrued"],
        "next_from": values.get("incentive_next_from"),
        "next_gap": values.get("incentive_next_gap"),
        "days_left": values["incentive_days_left"],
        "gate_target": values.get("incentive_gate_target"),
        "projected": values["incentive_projected"],
    }
