"""Per-dealer state in event time, kept by our own code (never in durable-rules sessions).

Times are POSIX seconds (float). A state is what the measures need and no
more: sales inside the longest window, the last visit, promotions, the ids of
recent events (for idempotency) and the open alert episodes.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field

from services.common.events import (
    Event,
    PromotionApproved,
    PromotionEnded,
    PromotionPlanned,
    PromotionSpend,
    Sale,
    TargetSet,
    Visit,
)

DAY = 86400.0


def ts(moment: dt.datetime) -> float:
    return moment.timestamp()


def day_start(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp()


@dataclass
class Promotion:
    budget: float | None = None
    owner: str | None = None
    starts_on: str | None = None
    ends_on: str | None = None
    approved_by: str | None = None
    approved_at: float | None = None
    spend: float = 0.0
    spend_ids: list[str] = field(default_factory=list)
    ended_at: float | None = None


@dataclass
class Episode:
    alert_id: str
    opened_at: float
    count: int = 1


@dataclass
class DealerState:
    dealer_id: str
    first_seen: float | None = None
    latest: float | None = None  # the latest time this dealer was judged at (never goes back)
    last_visit_at: float | None = None
    sales: list[tuple[float, float]] = field(default_factory=list)  # (time, net amount), sorted
    promotions: dict[str, Promotion] = field(default_factory=dict)
    targets: dict[str, tuple[float, int]] = field(default_factory=dict)  # period -> (sales, outlets)
    seen: dict[str, float] = field(default_factory=dict)  # event_id -> occurred_at
    episodes: dict[str, Episode] = field(default_factory=dict)

    def knows(self, event: Event) -> bool:
        if isinstance(event, PromotionSpend):
            promotion = self.promotions.get(event.promotion_id)
            return promotion is not None and event.event_id in promotion.spend_ids
        return event.event_id in self.seen

    def apply(self, event: Event) -> None:
        """Count one (new) event. Callers check `knows` first: apply is not idempotent."""
        at = ts(event.occurred_at)
        self.first_seen = at if self.first_seen is None else min(self.first_seen, at)
        if isinstance(event, Sale):
            bisect.insort(self.sales, (at, float(event.amount)))
        elif isinstance(event, Visit):
            self.last_visit_at = at if self.last_visit_at is None else max(self.last_visit_at, at)
        elif isinstance(event, TargetSet):
            self.targets[event.period] = (float(event.sales_target), event.active_outlets_target)
        elif isinstance(event, PromotionPlanned | PromotionApproved | PromotionSpend | PromotionEnded):
            self._apply_promotion(event, at)
        if isinstance(event, PromotionSpend):
            self.promotions[event.promotion_id].spend_ids.append(event.event_id)
        else:
            self.seen[event.event_id] = at

    def _apply_promotion(self, event, at: float) -> None:
        promotion = self.promotions.setdefault(event.promotion_id, Promotion())
        if isinstance(event, PromotionPlanned):
            promotion.budget = float(event.budget)
            promotion.owner = event.owner
            promotion.starts_on = event.starts_on.isoformat()
            promotion.ends_on = event.ends_on.isoformat()
        elif isinstance(event, PromotionApproved):
            promotion.approved_by = event.approved_by
            promotion.approved_at = at if promotion.approved_at is None else min(promotion.approved_at, at)
        elif isinstance(event, PromotionSpend):
            promotion.spend += float(event.amount)
        else:
            promotion.ended_at = at

    def net_sales(self, after: float, until: float) -> float:
        """Net sales with time in (after, until]."""
        lo = bisect.bisect_right(self.sales, (after, float("inf")))
        hi = bisect.bisect_right(self.sales, (until, float("inf")))
        return sum(amount for _, amount in self.sales[lo:hi])

    def prune(self, horizon: float) -> None:
        """Forget sales and event ids older than `horizon` seconds before the latest judgement:
        no window reaches them any more, and counting such an event again changes nothing."""
        if self.latest is None:
            return
        cutoff = self.latest - horizon
        first_kept = bisect.bisect_right(self.sales, (cutoff, float("inf")))
        if first_kept:
            del self.sales[:first_kept]
        if self.seen and min(self.seen.values()) < cutoff:
            self.seen = {key: at for key, at in self.seen.items() if at >= cutoff}
