"""People and vehicles sent to a dealer (#24), in the rules state, and their effect.

A support runs from the start of `starts_on` to its end: `support.ended`'s time, or the end of
`ends_on`. It is judged by its effect when it ends, like a promotion: P = net sales from its start
to its end, S = net sales in as long before its start, X = cost x (1 - dealer_share), ratio
(P - S) / X. `scope: support` rules are event rules: `support.dispatched` judges them when it
arrives, `support.ended` when the support ends (the event, or the end of its last day reached by
the clock: core.py asks `due` at every judgement; the end of a day is always a deadline).
An ended support is kept 90 days (its alerts name it), then forgotten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.common import limits
from services.common.alerts import RunningSupport, SupportEvaluation
from services.common.events import Event, SupportDispatched, SupportEnded

from .calendar import Calendar
from .promotions import net_sales
from .state import utc

if TYPE_CHECKING:
    from .state import DealerState, Undo

SCOPE = "support"
EVENTS = (SupportDispatched, SupportEnded)
ENDED = "support.ended"  # the trigger of the judgement at its end, by the event or by the clock
MEASURES = (
    "support_cost",
    "support_dealer_share",
    "support_net_cost",
    "support_vehicle",
    "support_days",
    "support_sales",
    "support_sales_before",
    "support_net_effect",
    "support_ratio",
)
NAMES = {"support_id", "support_kind", "reason", "starts_on", "ends_on"}
KEPT_AFTER_END = 90 * 86400.0


@dataclass(slots=True)
class Support:
    kind: str | None = None  # None: only support.ended has arrived so far
    starts_on: str | None = None
    ends_on: str | None = None
    cost: float = 0.0
    dealer_share: float = 0.0
    owner: str | None = None
    reason: str | None = None
    ended_at: float | None = None  # support.ended's time (the earliest)
    judged_end: float | None = None  # when its end was judged (its evaluation sent)
    sales_during: float | None = None  # P and S, final once its end is judged
    sales_before: float | None = None


def apply(state: DealerState, event: Event, at: float, undo: Undo) -> str | None:
    """The support the event changes (None: not a support event). Raises LimitReached."""
    if not isinstance(event, EVENTS):
        return None
    if state.supports is None:
        state.supports = {}
    found = state.supports.get(event.support_id)
    if found is None and len(state.supports) >= limits.MAX_SUPPORTS:
        raise limits.LimitReached(
            f"dealer {state.dealer_id} keeps {len(state.supports):,} support records, the limit "
            f"({limits.MAX_SUPPORTS:,}: running ones, and those ended in the last 90 days)"
        )
    undo.entry(state.supports, event.support_id)
    support = state.supports.setdefault(event.support_id, Support())
    if isinstance(event, SupportDispatched):
        support.kind, support.owner, support.reason = event.kind, event.owner, event.reason
        support.starts_on, support.ends_on = event.starts_on.isoformat(), event.ends_on.isoformat()
        support.cost, support.dealer_share = float(event.cost), float(event.dealer_share)
    else:
        support.ended_at = at if support.ended_at is None else min(support.ended_at, at)
    return event.support_id


def bounds(support: Support, calendar: Calendar) -> tuple[float, float] | None:
    """(its start, its end); None before it is dispatched."""
    if support.starts_on is None or support.ends_on is None:
        return None
    start = calendar.day_start(dt.date.fromisoformat(support.starts_on))
    end = calendar.day_start(dt.date.fromisoformat(support.ends_on) + dt.timedelta(days=1))
    if support.ended_at is not None:
        end = max(start, min(end, support.ended_at))
    return start, end


def measures(support: Support, state: DealerState, t: float, calendar: Calendar) -> dict[str, float]:
    net_cost = support.cost * (1.0 - support.dealer_share)
    values = {
        "support_cost": support.cost,
        "support_dealer_share": support.dealer_share,
        "support_net_cost": net_cost,
        "support_vehicle": 1.0 if support.kind == "vehicle" else 0.0,
    }
    found = bounds(support, calendar)
    if found is None:
        return values
    start, end = found
    if support.sales_during is not None and support.sales_before is not None:
        during, before = support.sales_during, support.sales_before
    else:
        until = min(end, max(t, start))  # running: so far
        during, before = net_sales(state, start, until), net_sales(state, start - (end - start), start)
    values.update(
        support_days=(end - start) / 86400.0,
        support_sales=during,
        support_sales_before=before,
        support_net_effect=during - before,
    )
    if net_cost > 0:
        values["support_ratio"] = (during - before) / net_cost
    return values


def due(state: DealerState, t: float, calendar: Calendar) -> list[str]:
    """The supports whose end is reached at t and not judged yet, by end then id."""
    ending = []
    for support_id, support in (state.supports or {}).items():
        found = bounds(support, calendar)
        if support.judged_end is None and found is not None and found[1] <= t:
            ending.append((found[1], support_id))
    return [support_id for _, support_id in sorted(ending)]


def ended(state: DealerState, support_id: str, t: float, calendar: Calendar, undo: Undo) -> None:
    """Its end is judged: P and S are kept as they are now (no later sale changes the verdict)."""
    assert state.supports is not None
    support = state.supports[support_id]
    undo.entry(state.supports, support_id)
    values = measures(support, state, t, calendar)
    support.sales_during, support.sales_before = values.get("support_sales"), values.get("support_sales_before")
    support.judged_end = t


def sales_needed_from(state: DealerState, calendar: Calendar) -> float | None:
    """The oldest sale a support not yet judged still needs (its S period starts there)."""
    needed = [
        found[0] - (found[1] - found[0])
        for support in (state.supports or {}).values()
        if support.judged_end is None and (found := bounds(support, calendar)) is not None
    ]
    return min(needed, default=None)


def prune(state: DealerState, t: float, undo: Undo) -> None:
    gone = [sid for sid, s in (state.supports or {}).items() if s.judged_end is not None and s.judged_end < t - KEPT_AFTER_END]
    for support_id in gone:
        assert state.supports is not None
        undo.entry(state.supports, support_id)
        del state.supports[support_id]
    if state.supports is not None and not state.supports:
        state.supports = None


def running(state: DealerState, t: float, calendar: Calendar) -> RunningSupport | None:
    """The support running at t that ends first (the dealers' ranking lists it apart)."""
    best: tuple[float, str] | None = None
    for support_id, support in (state.supports or {}).items():
        found = bounds(support, calendar)
        if found is not None and support.judged_end is None and found[0] <= t < found[1]:
            best = min(best or (found[1], support_id), (found[1], support_id))
    if best is None:
        return None
    support = (state.supports or {})[best[1]]
    assert support.kind is not None and support.ends_on is not None
    days_left = (dt.date.fromisoformat(support.ends_on) - calendar.local(t).date()).days + 1
    return RunningSupport(
        support_id=best[1], support_kind=support.kind, ends_on=support.ends_on, days_left=days_left, owner=support.owner
    )


def names(support_id: str, support: Support) -> dict[str, str | None]:
    return {
        "support_id": support_id,
        "support_kind": support.kind,
        "reason": support.reason,
        "starts_on": support.starts_on,
        "ends_on": support.ends_on,
    }


def evaluation(
    state: DealerState, support_id: str, values: dict[str, float], t: float, calendar: Calendar, version: str
) -> SupportEvaluation:
    support = (state.supports or {})[support_id]
    found = bounds(support, calendar)
    assert found is not None and support.kind is not None and support.starts_on and support.ends_on
    ratio, net_cost = values.get("support_ratio"), values["support_net_cost"]
    return SupportEvaluation(
        dealer_id=state.dealer_id,
        support_id=support_id,
        support_kind=support.kind,
        owner=support.owner,
        reason=support.reason,
        starts_on=support.starts_on,
        ends_on=support.ends_on,
        started_at=utc(found[0]),
        ended_at=utc(found[1]),
        ended_early=support.ended_at is not None
        and support.ended_at < calendar.day_start(dt.date.fromisoformat(support.ends_on) + dt.timedelta(days=1)),
        days=values.get("support_days", 0.0),
        sales_during=values.get("support_sales", 0.0),
        sales_before=values.get("support_sales_before", 0.0),
        cost=support.cost,
        dealer_share=support.dealer_share,
        net_cost=net_cost,
        ratio=ratio,
        verdict="no-cost" if net_cost <= 0 else ("effective" if ratio is not None and ratio >= 1.0 else "ineffective"),
        at=utc(t),
        policy_version=version,
    )
