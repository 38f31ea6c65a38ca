"""The rules core, shared by the live service and every replay: events and clock ticks in,
alert signals out. It does no I/O, so the same inputs always give the same signals.

A dealer is judged at the time of each of its events and whenever the clock
reaches its next deadline (the earliest moment any measure can change). A
dealer's judgement time never goes backwards: a late event is counted in its
windows and the dealer is judged again at the latest time already reached.
"""

from __future__ import annotations

import datetime as dt

from services.common.alerts import AlertSignal, episode_alert_id
from services.common.events import Event, PromotionApproved, PromotionEnded, PromotionPlanned, PromotionSpend

from . import expressions as ex
from .engine import Matcher
from .measures import DEALER_MEASURES, HORIZON_SECONDS, Age, WindowSum, dealer_measures, promotion_measures
from .policy import CompiledRule, Policy, render_summary
from .state import DealerState, Episode, ts

_PROMOTION_EVENTS = (PromotionPlanned, PromotionApproved, PromotionSpend, PromotionEnded)


def _utc(moment: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(moment, dt.timezone.utc)


class RulesCore:
    def __init__(self, policy: Policy, states: dict[str, DealerState] | None = None):
        self.states: dict[str, DealerState] = states if states is not None else {}
        self.dirty: set[str] = set()  # dealers changed since the last save
        self.use(policy)

    def use(self, policy: Policy) -> None:
        self.policy = policy
        self._dealer_rules = policy.scoped("dealer")
        self._promotion_rules = policy.scoped("promotion")
        self._dealer_matcher = Matcher({r.id: r.pattern for r in self._dealer_rules})
        self._promotion_matcher = Matcher({r.id: r.pattern for r in self._promotion_rules})

    def handle(self, event: Event) -> list[AlertSignal] | None:
        """Count one event and judge its dealer; None if the event was already counted."""
        state = self.states.get(event.dealer_id)
        if state is None:
            state = self.states[event.dealer_id] = DealerState(event.dealer_id)
        if state.knows(event):
            return None
        state.apply(event)
        t = max(ts(event.occurred_at), state.latest or float("-inf"))
        signals = self._judge_dealer(state, t, trigger=event)
        if isinstance(event, _PROMOTION_EVENTS):
            signals += self._judge_promotion(state, event.promotion_id, t)
        state.prune(HORIZON_SECONDS)
        self.dirty.add(state.dealer_id)
        return signals

    def tick(self, dealer_id: str, t: float) -> list[AlertSignal]:
        """Judge a dealer at time t without a new event (the clock)."""
        state = self.states[dealer_id]
        signals = self._judge_dealer(state, max(t, state.latest or t), trigger=None)
        state.prune(HORIZON_SECONDS)
        self.dirty.add(dealer_id)
        return signals

    def next_deadline(self, dealer_id: str) -> float | None:
        """The earliest time after the dealer's last judgement at which a measure changes."""
        state = self.states[dealer_id]
        t = state.latest
        if t is None:
            return None
        candidates = []
        for measure in DEALER_MEASURES.values():
            if isinstance(measure, WindowSum):
                candidates.append(measure.next_change(state, t))
        for rule in self._dealer_rules:
            for name, days in rule.age_thresholds:
                measure = DEALER_MEASURES[name]
                assert isinstance(measure, Age)
                for strict in (False, True):
                    candidates.append(measure.crossing(state, days, strict))
        future = [c for c in candidates if c is not None and c > t]
        return min(future) if future else None

    def _judge_dealer(self, state: DealerState, t: float, trigger: Event | None) -> list[AlertSignal]:
        state.latest = t
        values = dealer_measures(state, t)
        holding = set(self._dealer_matcher.match(values))
        signals = []
        for rule in self._dealer_rules:
            if rule.spec.kind == "event" and trigger is None:
                continue  # event rules are judged on events only
            signal = self._episode(state, rule, None, rule.id in holding, t, values, owner=None)
            if signal:
                signals.append(signal)
        return signals

    def _judge_promotion(self, state: DealerState, promotion_id: str, t: float) -> list[AlertSignal]:
        promotion = state.promotions[promotion_id]
        values = promotion_measures(promotion)
        holding = set(self._promotion_matcher.match(values))
        signals = []
        for rule in self._promotion_rules:
            signal = self._episode(
                state, rule, promotion_id, rule.id in holding, t, values, owner=promotion.owner
            )
            if signal:
                signals.append(signal)
        return signals

    def _episode(self, state, rule: CompiledRule, subject, holds, t, values, owner) -> AlertSignal | None:
        """Open, continue or close the (rule, dealer, subject) episode."""
        key = rule.id if subject is None else f"{rule.id}|{subject}"
        episode = state.episodes.get(key)
        if holds:
            if episode is None:
                alert_id = episode_alert_id(rule.id, state.dealer_id, subject, _utc(t))
                episode = state.episodes[key] = Episode(alert_id, t, 0)
            episode.count += 1
            return self._signal("firing", rule, state, subject, episode, t, values, owner)
        if episode is not None and rule.spec.kind == "condition":
            del state.episodes[key]
            return self._signal("resolved", rule, state, subject, episode, t, values, owner)
        return None

    def _signal(self, kind, rule: CompiledRule, state, subject, episode: Episode, t, values, owner) -> AlertSignal:
        names = {"dealer_id": state.dealer_id, "promotion_id": subject, "owner": owner}
        used = sorted(ex.measures_of(rule.condition))
        return AlertSignal(
            alert_id=episode.alert_id,
            state=kind,
            rule_id=rule.id,
            dealer_id=state.dealer_id,
            subject=subject,
            severity=rule.spec.severity,
            summary=" ".join(render_summary(rule.spec.summary, {**values, **names}).split()),
            details={
                "condition": " ".join(rule.spec.when.split()),
                "measures": {name: _round(values.get(name)) for name in used},
                "thresholds": _thresholds(rule.condition, values),
            },
            owner=owner,
            labels=dict(rule.spec.labels),
            policy_version=self.policy.version,
            opened_at=_utc(episode.opened_at),
            at=_utc(t),
            firing_count=episode.count,
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _thresholds(condition: ex.Condition, values: dict) -> dict[str, float | None]:
    """For each comparison `measure op expression`: the value the measure is compared with."""
    result = {}
    stack = [condition]
    while stack:
        node = stack.pop()
        if isinstance(node, ex.Logic):
            stack.extend(node.items)
        elif isinstance(node, ex.Not):
            stack.append(node.item)
        elif isinstance(node.left, ex.Measure):
            result[f"{node.left.name} {node.op}"] = _round(ex.value_of(node.right, values))
        elif isinstance(node.right, ex.Measure):
            result[f"{node.right.name} {_FLIP[node.op]}"] = _round(ex.value_of(node.left, values))
    return result


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
