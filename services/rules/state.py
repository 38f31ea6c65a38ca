"""Per-dealer state in event time, kept by our own code (never in durable-rules sessions).

Times are POSIX seconds (float). A state holds what the policy's sources need
(see measures.py), the dealer's promotions, the ids of recent events (for
idempotency) and the open alert episodes. Numeric series are `array('d')`:
8 bytes a value instead of a Python float object.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from services.common.events import (
    Event,
    OutletRegistered,
    PromotionApproved,
    PromotionEnded,
    PromotionPlanned,
    PromotionSpend,
)

from .measures import Source
from .network import Outlet, RecentVisit, VisitPlan

PROMOTION_EVENTS = (PromotionPlanned, PromotionApproved, PromotionSpend, PromotionEnded)
PromotionEvent = PromotionPlanned | PromotionApproved | PromotionSpend | PromotionEnded


def ts(moment: dt.datetime) -> float:
    return moment.timestamp()


def utc(moment: float) -> dt.datetime:
    """The inverse of ts()."""
    return dt.datetime.fromtimestamp(moment, dt.UTC)


def id_key(event_id: str) -> int:
    """64 bits of a hash of the event id: the chance that two of a dealer's recent ids collide
    is about n^2 / 2^65 (nil for the few thousand ids a dealer holds)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little", signed=True)


class TextCodes:
    """Text values of `distinct` measures (outlet ids) as numbers: one table per process."""

    def __init__(self) -> None:
        self._codes: dict[str, float] = {}
        self._texts: list[str] = []

    def code(self, text: str) -> float:
        code = self._codes.get(text)
        if code is None:
            code = self._codes[text] = float(len(self._texts))
            self._texts.append(text)
        return code

    def text(self, code: float) -> str:
        return self._texts[int(code)]


TEXT_CODES = TextCodes()


@dataclass(slots=True)
class Series:
    times: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))

    def add(self, at: float, value: float) -> None:
        index = bisect.bisect_right(self.times, at)
        self.times.insert(index, at)
        self.values.insert(index, value)

    def drop_before(self, cutoff: float) -> None:
        index = bisect.bisect_left(self.times, cutoff)
        if index:
            del self.times[:index]
            del self.values[:index]


@dataclass(slots=True)
class Promotion:
    budget: float | None = None
    owner: str | None = None
    starts_on: str | None = None
    ends_on: str | None = None
    approved_by: str | None = None
    approved_at: float | None = None
    spend: float = 0.0
    expected_sales: float | None = None
    spend_ids: array[int] = field(default_factory=lambda: array("q"))  # id_key() of counted spends
    ended_at: float | None = None


@dataclass(slots=True)
class Episode:
    alert_id: str
    opened_at: float
    count: int = 1


@dataclass(slots=True)
class Hold:
    """A dealer receiving history (live only, see judge.py)."""

    until: float  # wall time at which the hold ends if nothing more arrives for the dealer
    source: str  # the history its events come from (their `source`)
    mark: float  # that history's newest event time just after the dealer's last event


@dataclass(slots=True)
class DealerState:
    dealer_id: str
    first_seen: float | None = None
    latest: float | None = None  # the latest time this dealer was judged at (never goes back)
    series: dict[str, Series] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    latest_values: dict[str, list[tuple[float, float, str | None]]] = field(default_factory=dict)
    promotions: dict[str, Promotion] = field(default_factory=dict)
    # ids of recently counted events (id_key) and their times: 16 bytes an event
    seen_ids: array[int] = field(default_factory=lambda: array("q"))
    seen_times: array[float] = field(default_factory=lambda: array("d"))
    episodes: dict[str, Episode] = field(default_factory=dict)
    region: str | None = None  # the latest given (by event time): a label on the dealer's alerts
    region_at: float | None = None
    events: int = 0  # events counted (every accepted event is counted once: a check for tests and audits)
    hold: Hold | None = None  # live only: history is arriving for this dealer (see judge.py)
    saved_latest: float | None = field(default=None, compare=False)  # live only: `latest` when last stored
    # the network (network.py): master data, outlets, visit plans and the visits that may fulfil them
    name: str | None = None
    name_at: float | None = None
    registered: bool = False
    # None until needed: most dealers have none, and an empty dict is 64 bytes a dealer
    outlets: dict[str, Outlet] | None = None
    plans: dict[str, VisitPlan] | None = None
    visits: list[RecentVisit] | None = None

    def forget_ids(self, cutoff: float) -> None:
        """Forget the ids of events that occurred before `cutoff`."""
        if self.seen_times and min(self.seen_times) < cutoff:
            keep = [i for i, at in enumerate(self.seen_times) if at >= cutoff]
            self.seen_ids = array("q", [self.seen_ids[i] for i in keep])
            self.seen_times = array("d", [self.seen_times[i] for i in keep])

    def copy(self) -> DealerState:
        """An independent copy: judging works on the state, and a judgement that fails puts the
        copy back (nothing of the event or tick stays)."""
        copy = _shallow(self)  # (dataclasses.replace costs more than the rest of the copy)
        copy.series = {key: Series(s.times[:], s.values[:]) for key, s in self.series.items()}
        copy.last = dict(self.last)
        copy.latest_values = {key: list(entries) for key, entries in self.latest_values.items()}
        if self.promotions:
            copy.promotions = {key: replace(p, spend_ids=p.spend_ids[:]) for key, p in self.promotions.items()}
        else:
            copy.promotions = {}
        copy.seen_ids, copy.seen_times = self.seen_ids[:], self.seen_times[:]
        copy.episodes = {key: Episode(e.alert_id, e.opened_at, e.count) for key, e in self.episodes.items()}
        copy.hold = None if self.hold is None else replace(self.hold)
        copy.outlets = None if self.outlets is None else {key: replace(o) for key, o in self.outlets.items()}
        copy.plans = None if self.plans is None else {key: replace(p) for key, p in self.plans.items()}
        copy.visits = None if self.visits is None else list(self.visits)
        return copy

    def knows(self, event: Event) -> bool:
        if isinstance(event, PromotionSpend):
            promotion = self.promotions.get(event.promotion_id)
            return promotion is not None and id_key(event.event_id) in promotion.spend_ids
        return id_key(event.event_id) in self.seen_ids

    def apply(self, event: Event, sources: Sequence[Source]) -> None:
        """Count one new event (callers check `knows` first: apply is not idempotent)."""
        at = ts(event.occurred_at)
        self.first_seen = at if self.first_seen is None else min(self.first_seen, at)
        if (
            event.region is not None
            and not isinstance(event, OutletRegistered)
            and (self.region_at is None or at >= self.region_at)
        ):
            self.region, self.region_at = sys.intern(event.region), at
        for source in sources:
            if not source.matches(event):
                continue
            if source.kind == "last":
                self.last[source.key] = max(self.last.get(source.key, at), at)
                continue
            value = source.value(event)
            if value is None:
                continue
            if source.text:
                value = TEXT_CODES.code(value)  # 8 bytes a value instead of a string per sale
            if source.kind == "series":
                series = self.series.get(source.key)
                if series is None:
                    series = self.series[source.key] = Series()
                series.add(at, value)
            else:
                entries = self.latest_values.setdefault(source.key, [])
                period = getattr(event, "period", None)
                bisect.insort(entries, (at, value, sys.intern(period) if period else None))
                del entries[:-2]  # the current period and one more (the one before, or one set early)
        if isinstance(event, PROMOTION_EVENTS):
            self._apply_promotion(event, at)
        self.events += 1
        if isinstance(event, PromotionSpend):
            self.promotions[event.promotion_id].spend_ids.append(id_key(event.event_id))
        else:
            self.seen_ids.append(id_key(event.event_id))
            self.seen_times.append(at)

    def _apply_promotion(self, event: PromotionEvent, at: float) -> None:
        promotion = self.promotions.setdefault(event.promotion_id, Promotion())
        if isinstance(event, PromotionPlanned):
            promotion.budget = float(event.budget)
            promotion.owner = event.owner
            promotion.starts_on = event.starts_on.isoformat()
            promotion.ends_on = event.ends_on.isoformat()
            promotion.expected_sales = None if event.expected_sales is None else float(event.expected_sales)
        elif isinstance(event, PromotionApproved):
            promotion.approved_by = event.approved_by
            promotion.approved_at = at if promotion.approved_at is None else min(promotion.approved_at, at)
        elif isinstance(event, PromotionSpend):
            promotion.spend += float(event.amount)
        else:
            promotion.ended_at = at

    def prune(self, series_cutoffs: dict[str, float], ids_cutoff: float | None, promotions_cutoff: float) -> None:
        """Forget what no window, lateness bound or open promotion can reach any more
        (`ids_cutoff` None: the ids are forgotten by forget_ids instead)."""
        for key, series in self.series.items():
            series.drop_before(series_cutoffs.get(key, float("inf")))
        if ids_cutoff is not None:
            self.forget_ids(ids_cutoff)
        ended = [pid for pid, p in self.promotions.items() if p.ended_at is not None and p.ended_at < promotions_cutoff]
        for pid in ended:
            del self.promotions[pid]


def _shallow(state: DealerState) -> DealerState:
    copy = object.__new__(DealerState)
    for name in DealerState.__slots__:
        object.__setattr__(copy, name, getattr(state, name))
    return copy
