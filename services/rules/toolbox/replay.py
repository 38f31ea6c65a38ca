"""Judge a list of events with a policy in memory, the way the backtest does, and keep the
alerts as episodes: what `policy test` and `policy diff` compare."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from services.common.alerts import AlertSignal
from services.common.events import Event

from .. import incentives, network, support
from ..core import RulesCore
from ..judge import Judge, Refused
from ..policy import CompiledRule, Policy
from ..promotions import promotion_measures
from ..signals import Output
from ..state import ts, utc


@dataclass
class Episode:
    """One alert from its opening to its resolution (None: still open at the end)."""

    rule_id: str
    dealer_id: str
    subject: str | None
    opened_at: dt.datetime
    resolved_at: dt.datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)  # the values when it opened

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.rule_id, self.dealer_id, self.subject)


class Episodes:
    """The alert signals of a replay, gathered into episodes by alert id."""

    def __init__(self) -> None:
        self.by_id: dict[str, Episode] = {}

    def add(self, outputs: Iterable[Output]) -> None:
        for output in outputs:
            if not isinstance(output, AlertSignal):
                continue
            found = self.by_id.get(output.alert_id)
            if found is None:
                found = self.by_id[output.alert_id] = Episode(
                    output.rule_id, output.dealer_id, output.subject, output.opened_at, details=dict(output.details)
                )
            if output.state == "resolved":
                found.resolved_at = output.at

    def all(self) -> list[Episode]:
        return sorted(self.by_id.values(), key=lambda e: (e.rule_id, e.dealer_id, e.subject or "", e.opened_at))


def replay(
    events: Iterable[Event], policy: Policy, until: dt.datetime, *, as_backtest: bool = False
) -> tuple[list[Episode], list[str]]:
    """The episodes a running stack would have raised by `until` (the clock judges every
    deadline up to it; events in time order), and the events it refused, each with why.
    as_backtest: what `dealerwatch backtest` shows instead (events in the order given, every
    dealer judged at `until` at the end)."""
    core = RulesCore(policy, alerts_only=True)
    judge = Judge(core)
    episodes = Episodes()
    refused: list[str] = []
    try:
        for event in events if as_backtest else sorted(events, key=lambda e: e.occurred_at):
            if event.occurred_at > until and not as_backtest:
                continue
            try:
                outputs, _ = judge.handle(event)
            except Refused as exc:
                episodes.add(exc.outputs)
                refused.append(f"{event.event_id}: {exc}")
                continue
            episodes.add(outputs)
        episodes.add(judge.finish(ts(until)) if as_backtest else judge.advance(ts(until)))
    finally:
        core.close()
    return episodes.all(), refused


def values_at(
    events: Iterable[Event], policy: Policy, rule: CompiledRule, dealer_id: str, subject: str | None, at: dt.datetime
) -> dict[str, float] | None:
    """The measures `rule` compares for this dealer and subject at `at` (None: no such dealer or
    subject then), from the events up to `at`."""
    core = RulesCore(policy)
    judge = Judge(core)
    try:
        for event in sorted(events, key=lambda e: e.occurred_at):
            if event.occurred_at <= at:
                try:
                    judge.handle(event)
                except Refused:
                    continue
        state = core.states.get(dealer_id)
        if state is None:
            return None
        t = ts(at)
        judge.advance(t)
        return _scope_values(core, policy, rule.spec.scope, state, subject, t)
    finally:
        core.close()


def _scope_values(
    core: RulesCore, policy: Policy, scope: str, state: Any, subject: str | None, t: float
) -> dict[str, float] | None:
    calendar = policy.calendar
    if scope == "dealer":
        return core.measures_of(state, t)
    if subject is None:
        return None
    if scope in network.SCOPES:
        found = network.subjects(state, scope, t, calendar).get(subject)
        return None if found is None else dict(found.values)
    if scope == "promotion":
        promotion = state.promotions.get(subject)
        return None if promotion is None else promotion_measures(promotion, state, t, calendar)
    if scope == support.SCOPE:
        running = (state.supports or {}).get(subject)
        return None if running is None else support.measures(running, state, t, calendar)
    if scope == incentives.SCOPE:
        current = incentives.current(policy.spec.incentives, t, calendar).get(subject)
        return None if current is None else incentives.measures(state, *current, calendar.local(t).date())
    return None


def moment(value: dt.datetime | dt.date, policy: Policy, at_time: dt.time = dt.time()) -> dt.datetime:
    """A date alone is that day at `at_time` in the policy's time zone; a time without an offset too."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, at_time)
    if value.tzinfo is None:
        value = value.replace(tzinfo=policy.calendar.zone)
    return utc(value.timestamp())
