"""The dealer's network in the rules state: its master data (name, registered or not), the
outlets it sells to, and its visit plans; the measures of outlets and plans (one alert episode
per outlet or plan), and the dealer's outlet coverage.

Outlet and plan measures are built in (the policy language has no per-outlet or per-plan
windows); a rule with `scope: outlet` or `scope: plan` is judged for each open outlet or plan
of the dealer whenever the dealer is judged.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.common import visit_plans
from services.common.durations import DAY
from services.common.events import (
    DealerRegistered,
    DealerUpdated,
    Event,
    OutletClosed,
    OutletRegistered,
    Sale,
    Visit,
    VisitPlanCancelled,
    VisitPlanned,
)

from .calendar import Calendar
from .keys import SourceKey
from .measures import Source

if TYPE_CHECKING:
    from .state import DealerState


def _text_codes() -> Any:
    from .state import TEXT_CODES

    return TEXT_CODES


NETWORK_EVENTS = (DealerRegistered, DealerUpdated, OutletRegistered, OutletClosed, VisitPlanned, VisitPlanCancelled)
COVERAGE_WINDOW = 30 * DAY
# Sales with quantity > 0 by outlet: the same series as a policy's `distinct: outlet_id` measure
# over such sales (one copy when both exist), kept for the coverage window. Only registered
# outlets get a record of their own: a dealer sells to many outlets it never registers.
_WHERE = (("quantity", "gt", 0.0),)
OUTLET_SALES = Source(str(SourceKey("series", "sale", "outlet_id", _WHERE, True)), "series", "sale", "outlet_id", _WHERE, True)
# visits kept to fulfil a plan posted after them: its window reaches EARLY_DAYS back (plus a day
# for the time zone); the policy's lateness is added where the state is pruned
VISITS_KEPT = (visit_plans.EARLY_DAYS + visit_plans.LATE_DAYS + 2) * DAY


@dataclass(slots=True)
class Outlet:
    registered_at: float | None = None
    closed_at: float | None = None
    last_sale: float | None = None  # the latest sale with quantity > 0


@dataclass(slots=True)
class VisitPlan:
    planned_for: str | None = None  # ISO date; None: only a cancellation has arrived so far
    kind: str = ""
    visitor_id: str | None = None
    outlet_id: str | None = None
    cancelled_at: float | None = None
    fulfilled_at: float | None = None  # the earliest fulfilling visit


RecentVisit = tuple[float, str, str | None, str | None]  # (time, kind, outlet_id, plan_id)


def is_network_event(event: Event) -> bool:
    return isinstance(event, NETWORK_EVENTS)


def apply(state: DealerState, event: Event, at: float, calendar: Calendar) -> None:
    """Count what the event says about the dealer's network (any event type: sales and visits
    feed outlets and plans too)."""
    if isinstance(event, Sale):
        outlet = (state.outlets or {}).get(event.outlet_id or "")
        if outlet is not None and event.quantity > 0:
            outlet.last_sale = at if outlet.last_sale is None else max(outlet.last_sale, at)
    elif isinstance(event, Visit):
        visit = (at, sys.intern(event.kind), event.outlet_id, event.plan_id)
        state.visits = (state.visits or []) + [visit]
        state.visits.sort(key=lambda v: v[0])  # a late visit goes where it belongs (stable)
        for plan_id, plan in (state.plans or {}).items():
            _fulfil(plan_id, plan, [visit], calendar)
    elif isinstance(event, DealerRegistered | DealerUpdated):
        if isinstance(event, DealerRegistered):
            state.registered = True
        if event.name is not None and (state.name_at is None or at >= state.name_at):
            state.name, state.name_at = event.name, at
    elif isinstance(event, OutletRegistered):
        outlet = _outlet(state, event.outlet_id)
        if outlet.closed_at is not None and at > outlet.closed_at:  # registered again after closing
            outlet.closed_at, outlet.registered_at = None, at
        elif outlet.registered_at is None or at < outlet.registered_at:
            outlet.registered_at = at
        recent = _recent_sale(state, event.outlet_id)  # its sales may have come first
        if recent is not None and (outlet.last_sale is None or recent > outlet.last_sale):
            outlet.last_sale = recent
    elif isinstance(event, OutletClosed):
        outlet = _outlet(state, event.outlet_id)
        outlet.closed_at = at if outlet.closed_at is None else min(outlet.closed_at, at)
    elif isinstance(event, VisitPlanned):
        plan = _plan(state, event.plan_id)
        plan.planned_for, plan.kind = event.planned_for.isoformat(), sys.intern(event.kind)
        plan.visitor_id, plan.outlet_id = event.visitor_id, event.outlet_id
        _fulfil(event.plan_id, plan, state.visits or [], calendar)
    elif isinstance(event, VisitPlanCancelled):
        plan = _plan(state, event.plan_id)
        plan.cancelled_at = at if plan.cancelled_at is None else min(plan.cancelled_at, at)


def _outlet(state: DealerState, outlet_id: str) -> Outlet:
    if state.outlets is None:
        state.outlets = {}
    outlet = state.outlets.get(outlet_id)
    if outlet is None:
        outlet = state.outlets[outlet_id] = Outlet()
    return outlet


def _plan(state: DealerState, plan_id: str) -> VisitPlan:
    if state.plans is None:
        state.plans = {}
    return state.plans.setdefault(plan_id, VisitPlan())


def _recent_sale(state: DealerState, outlet_id: str) -> float | None:
    series = state.series.get(OUTLET_SALES.key)
    if series is None:
        return None
    code = _text_codes().code(outlet_id)
    return max((at for at, value in zip(series.times, series.values, strict=True) if value == code), default=None)


def _fulfil(plan_id: str, plan: VisitPlan, visits: list[RecentVisit], calendar: Calendar) -> None:
    if plan.planned_for is None:
        return
    plan_window = visit_plans.window(dt.date.fromisoformat(plan.planned_for), calendar.zone)
    for at, kind, outlet_id, visit_plan_id in visits:
        if visit_plans.fulfils(plan_id, plan.kind, plan.outlet_id, plan_window, at, kind, outlet_id, visit_plan_id):
            plan.fulfilled_at = at if plan.fulfilled_at is None else min(plan.fulfilled_at, at)


def prune(state: DealerState, t: float, lateness: float, calendar: Calendar) -> None:
    """Forget what no judgement can reach any more: visits older than any plan window a late
    plan could have, outlets closed (or never registered and silent) for longer than the
    lateness, plans carried out or cancelled before the lateness bound. A missed plan is kept
    while nothing fulfils it: its alert stays open."""
    cutoff = t - lateness - DAY
    if state.visits and state.visits[0][0] < cutoff - VISITS_KEPT:
        state.visits = [visit for visit in state.visits if visit[0] >= cutoff - VISITS_KEPT] or None
    if state.outlets:
        kept = {
            oid: o
            for oid, o in state.outlets.items()
            if not ((o.closed_at is not None and o.closed_at < cutoff) or (o.registered_at is None and o.closed_at is None))
        }
        state.outlets = kept or None
    if state.plans:
        plans = {
            pid: p
            for pid, p in state.plans.items()
            if not (
                (p.cancelled_at is not None and p.cancelled_at < cutoff)
                or (p.fulfilled_at is not None and p.fulfilled_at < cutoff and _window_end(p, calendar) < cutoff)
            )
        }
        state.plans = plans or None


def _window_end(plan: VisitPlan, calendar: Calendar) -> float:
    if plan.planned_for is None:
        return float("-inf")
    return visit_plans.window(dt.date.fromisoformat(plan.planned_for), calendar.zone)[1]


# --- measures ---


def open_outlets(state: DealerState, t: float) -> dict[str, Outlet]:
    return {
        oid: o
        for oid, o in (state.outlets or {}).items()
        if o.registered_at is not None and o.registered_at <= t and (o.closed_at is None or o.closed_at > t)
    }


@dataclass(frozen=True)
class OutletCoverage:
    """Registered open outlets with a sale (quantity > 0) in (t - 30d, t], as a share of the
    registered open outlets; no value without a registered open outlet."""

    name: str = "outlet_coverage_30d"

    def value(self, state: DealerState, t: float, calendar: Calendar) -> float | None:
        outlets = open_outlets(state, t)
        if not outlets:
            return None
        active = sum(1 for o in outlets.values() if o.last_sale is not None and t - COVERAGE_WINDOW < o.last_sale <= t)
        return active / len(outlets)

    def next_change(self, state: DealerState, t: float) -> float | None:
        """The next moment a sale leaves the window (registrations and closings are events)."""
        ends = [o.last_sale + COVERAGE_WINDOW for o in open_outlets(state, t).values() if o.last_sale is not None]
        return min((end for end in ends if end > t), default=None)


@dataclass(frozen=True)
class Registered:
    """1 once the dealer has a dealer.registered event, else 0."""

    name: str = "dealer_registered"

    def value(self, state: DealerState, t: float, calendar: Calendar) -> float:
        return 1.0 if state.registered else 0.0


DEALER_MEASURES = {"dealer_registered": Registered(), "outlet_coverage_30d": OutletCoverage()}


@dataclass(frozen=True)
class Subject:
    """One outlet or plan as a scoped rule sees it."""

    values: dict[str, float]
    references: dict[str, float]  # age measure -> the moment it counts from
    owner: str | None = None
    names: dict[str, Any] | None = None  # for summaries


OUTLET_MEASURES = ("outlet_days_since_sale",)
PLAN_MEASURES = ("plan_overdue_days",)
SUBJECT_AGES = frozenset(OUTLET_MEASURES + PLAN_MEASURES)  # both grow with time


def outlets(state: DealerState, t: float, calendar: Calendar) -> dict[str, Subject]:
    """Registered outlets; an open one has days since its last sale with quantity > 0 (or since
    it was registered), a closed one no value (its episode resolves)."""
    subjects = {}
    open_now = open_outlets(state, t)
    for outlet_id, outlet in (state.outlets or {}).items():
        if outlet.registered_at is None:
            continue
        values, references = {}, {}
        if outlet_id in open_now:
            since = outlet.registered_at if outlet.last_sale is None else max(outlet.registered_at, outlet.last_sale)
            values, references = {"outlet_days_since_sale": (t - since) / DAY}, {"outlet_days_since_sale": since}
        subjects[outlet_id] = Subject(values, references, names={"outlet_id": outlet_id})
    return subjects


def plans(state: DealerState, t: float, calendar: Calendar) -> dict[str, Subject]:
    """Visit plans; one neither carried out nor cancelled has the days since its window closed
    (negative before), the others no value (their episode resolves)."""
    subjects = {}
    for plan_id, plan in (state.plans or {}).items():
        if plan.planned_for is None:
            continue
        values, references = {}, {}
        done = plan.fulfilled_at is not None and plan.fulfilled_at <= t
        if not done and not (plan.cancelled_at is not None and plan.cancelled_at <= t):
            end = _window_end(plan, calendar)
            values, references = {"plan_overdue_days": (t - end) / DAY}, {"plan_overdue_days": end}
        names = {"plan_id": plan_id, "planned_for": plan.planned_for, "visit_kind": plan.kind}
        subjects[plan_id] = Subject(values, references, owner=plan.visitor_id, names=names)
    return subjects


SUBJECTS = {"outlet": outlets, "plan": plans}
SUBJECT_MEASURES = {"outlet": OUTLET_MEASURES, "plan": PLAN_MEASURES}
SUBJECT_NAMES = {"outlet": {"outlet_id"}, "plan": {"plan_id", "planned_for", "visit_kind"}}
