"""The dealer's network in the rules state: its master data (name, registered or not), the
outlets it sells to, and its visit plans; the measures of outlets and plans (one alert episode
per outlet or plan), and the dealer's outlet coverage.

Outlet and plan measures are built in (the policy language has no per-outlet or per-plan
windows); a rule with `scope: outlet` or `scope: plan` is judged for an outlet or plan when an
event changes it, when one of its ages crosses a number the rule compares it with, and at the
first judgement of each local day (core.py): a judgement costs what changed, not every outlet
and plan the dealer has.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.common import limits, visit_plans
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

from . import feedback
from .calendar import Calendar
from .keys import SourceKey
from .measures import Source

if TYPE_CHECKING:
    from .state import DealerState, Undo


NETWORK_EVENTS = (
    DealerRegistered,
    DealerUpdated,
    OutletRegistered,
    OutletClosed,
    VisitPlanned,
    VisitPlanCancelled,
    *feedback.EVENTS,
)
COVERAGE_WINDOW = 30 * DAY
# Sales with quantity > 0 by outlet: the same series as a policy's `distinct: outlet_id` measure
# over such sales (one copy when both exist), kept for the coverage window. Only registered
# outlets get a record of their own: a dealer sells to many outlets it never registers.
_WHERE = (("quantity", "gt", 0.0),)
OUTLET_SALES = Source(str(SourceKey("series", "sale", "outlet_id", _WHERE, True)), "series", "sale", "outlet_id", _WHERE, True)
# visits kept to fulfil a plan posted after them: its window reaches EARLY_DAYS back (plus a day
# for the time zone); the policy's lateness is added where the state is pruned
VISITS_KEPT = (visit_plans.EARLY_DAYS + visit_plans.LATE_DAYS + 2) * DAY

Touched = set[tuple[str, str]]  # (scope, subject id): the outlets, plans and feedback items an event changed


@dataclass(slots=True)
class Outlet:
    registered_at: float | None = None
    closed_at: float | None = None
    last_sale: float | None = None  # the latest sale with quantity > 0

    @property
    def is_open(self) -> bool:
        """Open at any time from the dealer's judgement time on (no time kept is later than it)."""
        return self.registered_at is not None and self.closed_at is None


@dataclass(slots=True)
class VisitPlan:
    planned_for: str | None = None  # ISO date; None: only a cancellation has arrived so far
    kind: str = ""
    visitor_id: str | None = None
    outlet_id: str | None = None
    cancelled_at: float | None = None
    fulfilled_at: float | None = None  # the earliest fulfilling visit


RecentVisit = tuple[float, str, str | None, str | None]  # (time, kind, outlet_id, plan_id)


class NetworkIndex:
    """Derived from a dealer's outlets and plans, never stored (rebuilt after a load or a failed
    judgement): the outlet coverage without looking at every outlet, and the plans a visit may
    carry out without looking at every plan."""

    __slots__ = ("open_outlets", "open_sales", "plans_by_day")

    def __init__(self, state: DealerState):
        self.open_outlets = 0
        self.open_sales: list[float] = []  # the last sale of each open outlet that has one, sorted
        self.plans_by_day: dict[str, list[str]] = {}  # planned_for -> plan ids
        for outlet in (state.outlets or {}).values():
            self.add_outlet(outlet)
        for plan_id, plan in (state.plans or {}).items():
            self.add_plan(plan_id, plan)

    def add_outlet(self, outlet: Outlet) -> None:
        if outlet.is_open:
            self.open_outlets += 1
            if outlet.last_sale is not None:
                bisect.insort(self.open_sales, outlet.last_sale)

    def remove_outlet(self, outlet: Outlet) -> None:
        if outlet.is_open:
            self.open_outlets -= 1
            if outlet.last_sale is not None:
                del self.open_sales[bisect.bisect_left(self.open_sales, outlet.last_sale)]

    def add_plan(self, plan_id: str, plan: VisitPlan) -> None:
        if plan.planned_for is not None:
            self.plans_by_day.setdefault(plan.planned_for, []).append(plan_id)

    def remove_plan(self, plan_id: str, plan: VisitPlan) -> None:
        if plan.planned_for is not None:
            day = self.plans_by_day[plan.planned_for]
            day.remove(plan_id)
            if not day:
                del self.plans_by_day[plan.planned_for]


def index_of(state: DealerState) -> NetworkIndex:
    if state.network_index is None:
        state.network_index = NetworkIndex(state)
    return state.network_index


def is_network_event(event: Event) -> bool:
    return isinstance(event, NETWORK_EVENTS)


def apply(state: DealerState, event: Event, at: float, calendar: Calendar, undo: Undo) -> Touched:
    """Count what the event says about the dealer's network (any event type: sales and visits
    feed outlets and plans too); returns the outlets and plans it changed. Raises LimitReached
    for an outlet or plan beyond the dealer's bound."""
    touched: Touched = set()
    if isinstance(event, Sale):
        outlet = (state.outlets or {}).get(event.outlet_id or "")
        if outlet is not None and event.quantity > 0 and (outlet.last_sale is None or at > outlet.last_sale):
            with _changing_outlet(state, event.outlet_id or "", undo) as outlet:
                outlet.last_sale = at
            touched.add(("outlet", event.outlet_id or ""))
    elif isinstance(event, Visit):
        visit = (at, sys.intern(event.kind), event.outlet_id, event.plan_id)
        state.visits = (state.visits or []) + [visit]  # a new list: the one before stays as it was (undo)
        state.visits.sort(key=lambda v: v[0])  # a late visit goes where it belongs (stable)
        for plan_id in _plans_a_visit_may_carry_out(state, visit, calendar):
            if _fulfil(state, plan_id, [visit], calendar, undo):
                touched.add(("plan", plan_id))
    elif isinstance(event, DealerRegistered | DealerUpdated):
        if isinstance(event, DealerRegistered):
            state.registered = True
        if event.name is not None and (state.name_at is None or at >= state.name_at):
            state.name, state.name_at = event.name, at
    elif isinstance(event, OutletRegistered):
        recent = _recent_sale(state, event.outlet_id)  # its sales may have come first
        with _changing_outlet(state, event.outlet_id, undo) as outlet:
            if outlet.closed_at is not None and at > outlet.closed_at:  # registered again after closing
                outlet.closed_at, outlet.registered_at = None, at
            elif outlet.registered_at is None or at < outlet.registered_at:
                outlet.registered_at = at
            if recent is not None and (outlet.last_sale is None or recent > outlet.last_sale):
                outlet.last_sale = recent
        touched.add(("outlet", event.outlet_id))
    elif isinstance(event, OutletClosed):
        with _changing_outlet(state, event.outlet_id, undo) as outlet:
            outlet.closed_at = at if outlet.closed_at is None else min(outlet.closed_at, at)
        touched.add(("outlet", event.outlet_id))
    elif isinstance(event, VisitPlanned):
        with _changing_plan(state, event.plan_id, undo) as plan:
            plan.planned_for, plan.kind = event.planned_for.isoformat(), sys.intern(event.kind)
            plan.visitor_id, plan.outlet_id = event.visitor_id, event.outlet_id
        _fulfil(state, event.plan_id, state.visits or [], calendar, undo)
        touched.add(("plan", event.plan_id))
    elif isinstance(event, VisitPlanCancelled):
        with _changing_plan(state, event.plan_id, undo) as plan:
            plan.cancelled_at = at if plan.cancelled_at is None else min(plan.cancelled_at, at)
        touched.add(("plan", event.plan_id))
    elif isinstance(event, feedback.EVENTS):
        touched |= feedback.apply(state, event, at, undo)
    return touched


@contextlib.contextmanager
def _changing_outlet(state: DealerState, outlet_id: str, undo: Undo) -> Iterator[Outlet]:
    """The outlet (new if need be) to change in place: kept aside first, and the index follows."""
    if state.outlets is None:
        state.outlets = {}
    outlet = state.outlets.get(outlet_id)
    if outlet is None and len(state.outlets) >= limits.MAX_OUTLETS:
        raise limits.LimitReached(
            f"dealer {state.dealer_id} keeps {len(state.outlets):,} outlets, the limit ({limits.MAX_OUTLETS:,}: "
            "registered ones, and those closed within the lateness)"
        )
    undo.entry(state.outlets, outlet_id)
    index = index_of(state)
    if outlet is None:
        outlet = state.outlets[outlet_id] = Outlet()
    index.remove_outlet(outlet)
    yield outlet
    index.add_outlet(outlet)


@contextlib.contextmanager
def _changing_plan(state: DealerState, plan_id: str, undo: Undo) -> Iterator[VisitPlan]:
    if state.plans is None:
        state.plans = {}
    plan = state.plans.get(plan_id)
    if plan is None and len(state.plans) >= limits.MAX_PLANS:
        raise limits.LimitReached(
            f"dealer {state.dealer_id} keeps {len(state.plans):,} visit plans, the limit ({limits.MAX_PLANS:,}: "
            "open and missed ones, and those carried out or cancelled within the lateness)"
        )
    undo.entry(state.plans, plan_id)
    index = index_of(state)
    if plan is None:
        plan = state.plans[plan_id] = VisitPlan()
    index.remove_plan(plan_id, plan)
    yield plan
    index.add_plan(plan_id, plan)


def _recent_sale(state: DealerState, outlet_id: str) -> float | None:
    """The latest kept sale (quantity > 0) to this outlet: from the newest back."""
    series = state.series.get(OUTLET_SALES.key)
    code = None if state.codes is None else state.codes.find(outlet_id)
    if series is None or code is None:
        return None
    values = series.values
    for index in range(len(values) - 1, -1, -1):
        if values[index] == code:
            return series.times[index]
    return None


def _plans_a_visit_may_carry_out(state: DealerState, visit: RecentVisit, calendar: Calendar) -> list[str]:
    """The plan it names, and the plans whose window can hold it (planned for a day from
    LATE_DAYS before the visit's day to EARLY_DAYS after it, a day more each side for the zone)."""
    if not state.plans:
        return []
    at, _, _, named = visit
    day = calendar.local(at).date()
    by_day = index_of(state).plans_by_day
    found = [named] if named is not None and named in state.plans else []
    for offset in range(-visit_plans.LATE_DAYS - 1, visit_plans.EARLY_DAYS + 2):
        found += by_day.get((day + dt.timedelta(days=offset)).isoformat(), ())
    return list(dict.fromkeys(found))


def _fulfil(state: DealerState, plan_id: str, visits: list[RecentVisit], calendar: Calendar, undo: Undo) -> bool:
    """Whether one of the visits carried the plan out earlier than anything before."""
    plan = (state.plans or {})[plan_id]
    if plan.planned_for is None:
        return False
    plan_window = visit_plans.window(dt.date.fromisoformat(plan.planned_for), calendar.zone)
    earliest = plan.fulfilled_at
    for at, kind, outlet_id, visit_plan_id in visits:
        if visit_plans.fulfils(plan_id, plan.kind, plan.outlet_id, plan_window, at, kind, outlet_id, visit_plan_id):
            earliest = at if earliest is None else min(earliest, at)
    if earliest == plan.fulfilled_at:
        return False
    undo.entry(state.plans, plan_id)  # (the index does not hold fulfilment)
    plan.fulfilled_at = earliest
    return True


def prune(state: DealerState, t: float, lateness: float, calendar: Calendar, undo: Undo) -> None:
    """Forget what no judgement can reach any more: visits older than any plan window a late
    plan could have, outlets closed for longer than the lateness, plans carried out or
    cancelled before the lateness bound. A missed plan is kept while nothing fulfils it: its
    alert stays open. (Once a day: it looks at every outlet and plan.)"""
    cutoff = t - lateness - DAY
    if state.visits and state.visits[0][0] < cutoff - VISITS_KEPT:
        state.visits = [visit for visit in state.visits if visit[0] >= cutoff - VISITS_KEPT] or None
    gone_outlets = [oid for oid, o in (state.outlets or {}).items() if o.closed_at is not None and o.closed_at < cutoff]
    gone_plans = [
        pid
        for pid, p in (state.plans or {}).items()
        if (p.cancelled_at is not None and p.cancelled_at < cutoff)
        or (p.fulfilled_at is not None and p.fulfilled_at < cutoff and _window_end(p, calendar) < cutoff)
    ]
    for oid in gone_outlets:
        assert state.outlets is not None
        undo.entry(state.outlets, oid)
        del state.outlets[oid]
    for pid in gone_plans:
        assert state.plans is not None
        undo.entry(state.plans, pid)
        del state.plans[pid]
    if gone_outlets or gone_plans:
        state.network_index = None  # rebuilt at its next use
    feedback.prune(state, cutoff, undo)
    if state.outlets is not None and not state.outlets:
        state.outlets = None
    if state.plans is not None and not state.plans:
        state.plans = None


def _window_end(plan: VisitPlan, calendar: Calendar) -> float:
    if plan.planned_for is None:
        return float("-inf")
    return visit_plans.window(dt.date.fromisoformat(plan.planned_for), calendar.zone)[1]


# --- measures ---


def open_outlets(state: DealerState, t: float) -> dict[str, Outlet]:
    return {oid: o for oid, o in (state.outlets or {}).items() if _open_at(o, t)}


def _open_at(outlet: Outlet, t: float) -> bool:
    return outlet.registered_at is not None and outlet.registered_at <= t and (outlet.closed_at is None or outlet.closed_at > t)


@dataclass(frozen=True)
class OutletCoverage:
    """Registered open outlets with a sale (quantity > 0) in (t - 30d, t], as a share of the
    registered open outlets; no value without a registered open outlet. From the dealer's
    judgement time on it is read from the network index (a judgement does not look at every
    outlet); before it (explain), from the outlets."""

    name: str = "outlet_coverage_30d"

    def value(self, state: DealerState, t: float, calendar: Calendar) -> float | None:
        if not state.outlets:
            return None
        if state.latest is not None and t >= state.latest:
            index = index_of(state)
            if not index.open_outlets:
                return None
            active = len(index.open_sales) - bisect.bisect_right(index.open_sales, t - COVERAGE_WINDOW)
            return active / index.open_outlets
        outlets = open_outlets(state, t)
        if not outlets:
            return None
        active = sum(1 for o in outlets.values() if o.last_sale is not None and t - COVERAGE_WINDOW < o.last_sale <= t)
        return active / len(outlets)

    def next_change(self, state: DealerState, t: float) -> float | None:
        """The next moment a sale leaves the window (registrations and closings are events)."""
        if not state.outlets:
            return None
        sales = index_of(state).open_sales
        first = bisect.bisect_right(sales, t - COVERAGE_WINDOW)
        return sales[first] + COVERAGE_WINDOW if first < len(sales) else None


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
SUBJECT_AGES = frozenset(OUTLET_MEASURES + PLAN_MEASURES + feedback.MEASURES)  # all grow with time
NO_SUBJECT = Subject({}, {})  # one that is gone: its episodes resolve


def outlet(state: DealerState, outlet_id: str, t: float, calendar: Calendar) -> Subject | None:
    """A registered outlet; an open one has days since its last sale with quantity > 0 (or since
    it was registered), a closed one no value (its episode resolves). None: not registered."""
    found = (state.outlets or {}).get(outlet_id)
    if found is None or found.registered_at is None:
        return None
    values, references = {}, {}
    if _open_at(found, t):
        since = found.registered_at if found.last_sale is None else max(found.registered_at, found.last_sale)
        values, references = {"outlet_days_since_sale": (t - since) / DAY}, {"outlet_days_since_sale": since}
    return Subject(values, references, names={"outlet_id": outlet_id})


def plan(state: DealerState, plan_id: str, t: float, calendar: Calendar) -> Subject | None:
    """A visit plan; one neither carried out nor cancelled has the days since its window closed
    (negative before), the others no value (their episode resolves). None: only cancelled."""
    found = (state.plans or {}).get(plan_id)
    if found is None or found.planned_for is None:
        return None
    values, references = {}, {}
    done = found.fulfilled_at is not None and found.fulfilled_at <= t
    if not done and not (found.cancelled_at is not None and found.cancelled_at <= t):
        end = _window_end(found, calendar)
        values, references = {"plan_overdue_days": (t - end) / DAY}, {"plan_overdue_days": end}
    names = {"plan_id": plan_id, "planned_for": found.planned_for, "visit_kind": found.kind}
    return Subject(values, references, owner=found.visitor_id, names=names)


def subject_ids(state: DealerState, scope: str) -> list[str]:
    kept = {"outlet": state.outlets, "plan": state.plans, feedback.SCOPE: state.feedback}[scope]
    return list(kept or ())


def has_subjects(state: DealerState) -> bool:
    return bool(state.outlets or state.plans or state.feedback)


SUBJECT = {"outlet": outlet, "plan": plan, feedback.SCOPE: feedback.subject}


def subjects(state: DealerState, scope: str, t: float, calendar: Calendar) -> dict[str, Subject]:
    """Every outlet or plan of the dealer (explain; a judgement looks only at what changed)."""
    found = {sid: SUBJECT[scope](state, sid, t, calendar) for sid in subject_ids(state, scope)}
    return {sid: subject for sid, subject in found.items() if subject is not None}


SUBJECT_MEASURES = {"outlet": OUTLET_MEASURES, "plan": PLAN_MEASURES, feedback.SCOPE: feedback.MEASURES}
SUBJECT_NAMES = {"outlet": {"outlet_id"}, "plan": {"plan_id", "planned_for", "visit_kind"}, feedback.SCOPE: feedback.NAMES}
SCOPES = tuple(SUBJECT)
