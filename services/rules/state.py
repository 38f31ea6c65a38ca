"""Per-dealer state in event time, kept by our own code (never in durable-rules sessions).

Times are POSIX seconds (float). A state holds what the policy's sources need
(see measures.py), the dealer's promotions, the ids of recent events (for
idempotency) and the open alert episodes. Numeric series are `array('d')`:
8 bytes a value instead of a Python float object.

A judgement is all or nothing at the cost of what it changes (`Undo`): what it is about to
change is kept aside, and put back if it fails; nothing is copied whole.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import operator
import sys
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from services.common import limits
from services.common.durations import DAY
from services.common.events import (
    Event,
    OutletRegistered,
    PromotionApproved,
    PromotionEnded,
    PromotionPlanned,
    PromotionSpend,
)

from .feedback import FeedbackItem
from .measures import Source
from .network import NetworkIndex, Outlet, RecentVisit, VisitPlan

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
    """Text values of `distinct` measures (outlet ids) as numbers, one table per dealer: codes
    are only valid inside its state (stored as text), and the table is compacted when the
    dealer's series no longer hold most of its codes (`compact`), so it never outgrows them."""

    __slots__ = ("_codes", "_texts")

    def __init__(self) -> None:
        self._codes: dict[str, float] = {}
        self._texts: list[str] = []

    def __len__(self) -> int:
        return len(self._texts)

    def code(self, text: str) -> float:
        code = self._codes.get(text)
        if code is None:
            code = self._codes[text] = float(len(self._texts))
            self._texts.append(text)
        return code

    def find(self, text: str) -> float | None:
        """The code of a text, without making one."""
        return self._codes.get(text)

    def text(self, code: float) -> str:
        return self._texts[int(code)]


@dataclass(slots=True)
class Series:
    times: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))

    def add(self, at: float, value: float, undo: Undo | None = None) -> None:
        index = bisect.bisect_right(self.times, at)
        self.times.insert(index, at)
        self.values.insert(index, value)
        if undo is not None:
            undo.step(lambda: self._remove(index))

    def _remove(self, index: int) -> None:
        del self.times[index]
        del self.values[index]

    def drop_before(self, cutoff: float, undo: Undo | None = None) -> None:
        index = bisect.bisect_left(self.times, cutoff)
        if index:
            if undo is not None:
                times, values = self.times[:index], self.values[:index]
                undo.step(lambda: self._restore(times, values))
            del self.times[:index]
            del self.values[:index]

    def _restore(self, times: array[float], values: array[float]) -> None:
        self.times[0:0], self.values[0:0] = times, values


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
    # a promotion never ended is closed a lateness after its last day: its net sales during and
    # before it are final then (no sale of those days can be counted any more) and kept here
    closed_at: float | None = None
    sales_during: float | None = None
    sales_before: float | None = None
    unapproved_spend: float = 0.0  # spent while not approved (or never planned) when it was counted

    @property
    def over(self) -> float | None:
        """When it ended or was closed (None: open)."""
        return self.ended_at if self.ended_at is not None else self.closed_at

    def days(self) -> int | None:
        if self.starts_on is None or self.ends_on is None:
            return None
        return (dt.date.fromisoformat(self.ends_on) - dt.date.fromisoformat(self.starts_on)).days + 1


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


SEEN_SET_FROM = 64  # ids kept from which `knows` looks them up in a set (a scan below it)


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
    feedback: dict[str, FeedbackItem] | None = None  # dealer feedback waiting for (or given) an answer (feedback.py)
    supports: dict[str, Any] | None = None  # support.Support by id: running, and ended within 90 days (support.py)
    month_sales: dict[str, float] | None = None  # net sales by local month, while the policy has incentives
    month_targets: dict[str, tuple[float, float]] | None = None  # month -> (set at, sales target) (incentives.py)
    # what the last DealerStanding said (sent again only when it changes); not stored: sent once more after a load
    standing: tuple[Any, ...] | None = field(default=None, compare=False)
    codes: TextCodes | None = field(default=None, compare=False)  # the text values of its distinct measures
    # derived from the above, never stored, rebuilt when None (after a load or a failed judgement)
    seen_set: set[int] | None = field(default=None, compare=False, repr=False)
    network_index: NetworkIndex | None = field(default=None, compare=False, repr=False)
    subject_deadlines: Any = field(default=None, compare=False, repr=False)  # core.SubjectDeadlines
    # the outcomes of the dealer rules' comparisons at `latest` (outcomes.py)
    outcomes: int | None = field(default=None, compare=False, repr=False)

    def text_codes(self) -> TextCodes:
        if self.codes is None:
            self.codes = TextCodes()
        return self.codes

    def forget_ids(self, cutoff: float) -> None:
        """Forget the ids of events that occurred before `cutoff`."""
        if self.seen_times and min(self.seen_times) < cutoff:
            keep = [i for i, at in enumerate(self.seen_times) if at >= cutoff]
            self.seen_ids = array("q", [self.seen_ids[i] for i in keep])
            self.seen_times = array("d", [self.seen_times[i] for i in keep])
            self.seen_set = None

    def begin(self) -> Undo:
        """A judgement starts: what it changes can be put back (`Undo.rollback`)."""
        return Undo(self)

    def knows(self, event: Event) -> bool:
        key = id_key(event.event_id)
        if isinstance(event, PromotionSpend):
            promotion = self.promotions.get(event.promotion_id)
            return promotion is not None and key in promotion.spend_ids
        if len(self.seen_ids) < SEEN_SET_FROM:
            return key in self.seen_ids
        if self.seen_set is None:
            self.seen_set = set(self.seen_ids)
        return key in self.seen_set

    def apply(self, event: Event, sources: Sequence[Source], undo: Undo) -> list[str]:
        """Count one new event (callers check `knows` first: apply is not idempotent); the keys
        of the sources it matched. Raises LimitReached, changing nothing, for a promotion beyond
        the bounds."""
        at = ts(event.occurred_at)
        undo.sources()
        if isinstance(event, PROMOTION_EVENTS):
            self._check_promotion(event)
        self.first_seen = at if self.first_seen is None else min(self.first_seen, at)
        if (
            event.region is not None
            and not isinstance(event, OutletRegistered)
            and (self.region_at is None or at >= self.region_at)
        ):
            self.region, self.region_at = sys.intern(event.region), at
        fed = []
        for source in sources:
            if not source.matches(event):
                continue
            fed.append(source.key)
            if source.kind == "last":
                self.last[source.key] = max(self.last.get(source.key, at), at)
                continue
            value = source.value(event)
            if value is None:
                continue
            if source.text:
                value = self.text_codes().code(value)  # 8 bytes a value instead of a string per sale
            if source.kind == "series":
                series = self.series.get(source.key)
                if series is None:
                    series = self.series[source.key] = Series()
                series.add(at, value, undo)
            else:
                entries = self.latest_values.setdefault(source.key, [])
                period = getattr(event, "period", None)
                bisect.insort(entries, (at, value, sys.intern(period) if period else None))
                del entries[:-2]  # the current period and one more (the one before, or one set early)
        if isinstance(event, PROMOTION_EVENTS):
            self._apply_promotion(event, at, undo)
        self.events += 1
        if isinstance(event, PromotionSpend):
            self.promotions[event.promotion_id].spend_ids.append(id_key(event.event_id))
        else:
            self.seen_ids.append(id_key(event.event_id))
            self.seen_times.append(at)
            if self.seen_set is not None:
                self.seen_set.add(self.seen_ids[-1])
        return fed

    def _check_promotion(self, event: PromotionEvent) -> None:
        promotion = self.promotions.get(event.promotion_id)
        if promotion is None and len(self.promotions) >= limits.MAX_PROMOTIONS:
            raise limits.LimitReached(
                f"dealer {self.dealer_id} keeps {len(self.promotions):,} promotions, the limit "
                f"({limits.MAX_PROMOTIONS:,}: open ones and those ended in the last 90 days)"
            )
        if isinstance(event, PromotionSpend) and promotion is not None and len(promotion.spend_ids) >= limits.MAX_SPENDS:
            raise limits.LimitReached(
                f"promotion {event.promotion_id} of dealer {self.dealer_id} has {limits.MAX_SPENDS:,} spends, the limit"
            )

    def _apply_promotion(self, event: PromotionEvent, at: float, undo: Undo) -> None:
        undo.entry(self.promotions, event.promotion_id)
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
            if promotion.budget is None or promotion.approved_at is None or promotion.approved_at > at:
                promotion.unapproved_spend += float(event.amount)
        else:
            promotion.ended_at = at

    def prune(self, series_cutoffs: dict[str, float], undo: Undo) -> None:
        """Forget the series values no window or open promotion can reach any more."""
        for key, series in self.series.items():
            series.drop_before(series_cutoffs.get(key, float("inf")), undo)

    def forget_promotions(self, cutoff: float, undo: Undo) -> None:
        """Promotions ended (or closed) before `cutoff` (90 days back: the dealer file has their
        evaluation)."""
        for pid in [pid for pid, p in self.promotions.items() if (over := p.over) is not None and over < cutoff]:
            undo.entry(self.promotions, pid)
            del self.promotions[pid]

    def compact_codes(self) -> None:
        """A new code table when the series hold under half of its codes (codes of outlets no
        window reaches any more); changes no value, so it needs no undo."""
        codes = self.codes
        if codes is None or len(codes) < 64:
            return
        text_series = [s for key, s in self.series.items() if key.endswith("|text")]
        used = {code for s in text_series for code in s.values}
        if 2 * len(used) >= len(codes):
            return
        fresh = TextCodes()
        mapping = {code: fresh.code(codes.text(code)) for code in sorted(used)}
        for s in text_series:
            s.values = array("d", [mapping[v] for v in s.values])
        self.codes = fresh


def _copied(value: Any) -> Any:
    """An entry as it was, kept aside by Undo (entries are small dataclasses)."""
    if type(value) is Episode:  # the most frequent (an episode's count, at each judgement it holds)
        return Episode(value.alert_id, value.opened_at, value.count)
    if isinstance(value, Promotion):
        return replace(value, spend_ids=value.spend_ids[:])
    if isinstance(value, float | int | str | tuple):
        return value  # immutable
    return replace(value)


_MISSING = object()
# the fields an Undo puts back as they were (references: what they point to is put back below)
_DERIVED = ("seen_set", "network_index", "subject_deadlines", "outcomes")
_FIELDS = tuple(name for name in DealerState.__slots__ if name not in _DERIVED)
_fields_of = operator.attrgetter(*_FIELDS)  # all of them in one call


class Undo:
    """What one judgement changes in a dealer's state, to be put back if it fails, kept at the
    cost of what changes: the state's fields (references), its few small maps whole (`last` and
    `latest` only when an event is counted), an entry of its outlets, plans, promotions or
    episodes when it is about to change, and the reverse of each change to an array. A state
    whose judgement was rolled back loses what is derived from it (rebuilt on use); an entry
    removed and put back comes last in its map (order means nothing)."""

    __slots__ = ("_state", "_fields", "_series", "_sources", "_sizes", "_entries", "_steps")

    def __init__(self, state: DealerState):
        self._state = state
        self._fields = _fields_of(state)
        self._series = dict(state.series)
        self._sources: tuple[dict[str, float], dict[str, list[tuple[float, float, str | None]]]] | None = None
        self._sizes = (len(state.seen_ids), len(state.seen_times))
        self._entries: dict[tuple[int, str], tuple[dict[str, Any], str, Any]] = {}
        self._steps: list[Callable[[], None]] = []

    def sources(self) -> None:
        """An event is about to be counted: its `last` times and `latest` values kept (a deadline
        changes neither)."""
        if self._sources is None:
            state = self._state
            self._sources = (dict(state.last), {k: list(v) for k, v in state.latest_values.items()})

    def entry(self, mapping: dict[str, Any] | None, key: str) -> None:
        """mapping[key] is about to be changed, added or removed."""
        if mapping is None or (id(mapping), key) in self._entries:
            return
        old = mapping.get(key, _MISSING)
        self._entries[(id(mapping), key)] = (mapping, key, old if old is _MISSING else _copied(old))

    def step(self, reverse: Callable[[], None]) -> None:
        """A change was made in place; `reverse` undoes it (run in the reverse order)."""
        self._steps.append(reverse)

    def rollback(self) -> None:
        state = self._state
        for name, value in zip(_FIELDS, self._fields, strict=True):
            object.__setattr__(state, name, value)
        state.series = self._series
        if self._sources is not None:
            state.last, state.latest_values = self._sources
        for mapping, key, old in self._entries.values():
            if old is _MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = old
        for reverse in reversed(self._steps):
            reverse()
        del state.seen_ids[self._sizes[0] :]
        del state.seen_times[self._sizes[1] :]
        state.seen_set = state.network_index = state.subject_deadlines = state.outcomes = None


def forget_cutoff(t: float, lateness: float) -> float:
    """Ids of events before this cannot come back as anything but too late."""
    return t - lateness - DAY
