"""The rules core, shared by the live service and the backtest: events and clock ticks in,
alert signals and promotion evaluations out. It does no I/O, so the same inputs always give
the same outputs.

A dealer is judged at the time of each of its events and whenever the clock
reaches its next deadline (the earliest moment a measure can change, or the
next local midnight). A dealer's judgement time never goes backwards: a late
event (within the policy's lateness) is counted in its windows and the dealer
is judged again at the latest time already reached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from services.common import support as priority
from services.common.alerts import AlertSignal, DealerStanding, PromotionEvaluation, episode_alert_id
from services.common.durations import DAY
from services.common.events import Event, PromotionEnded, Sale, SupportDispatched

from . import expressions as ex
from . import incentives, network, subjects, support
from .engine import Matcher
from .keys import EpisodeKey
from .measures import NET_SALES, DealerValues, WindowEdges, WindowMeasure
from .outcomes import Changes, Outcomes
from .policy import CompiledRule, Policy
from .promotions import freeze_if_final, promotion_measures, sales_needed_from
from .signals import Output as Output
from .signals import make_signal
from .spec import SCOPES
from .state import PROMOTION_EVENTS, DealerState, Episode, Promotion, Undo, ts, utc

PROMOTIONS_KEPT = 90 * DAY  # an ended (or closed) promotion is forgotten this long after


class TooLate(ValueError):
    """The event is older than the lateness bound allows; it is not counted."""


class RulesCore:
    def __init__(
        self,
        policy: Policy,
        states: dict[str, DealerState] | None = None,
        *,
        forget_ids_when_judging: bool = True,
        exhaustive: bool = False,
        alerts_only: bool = False,
    ):
        """forget_ids_when_judging: False for the live service, which forgets event ids when it
        stores a state (`forget_ids`): a message comes again until its ack reaches the broker,
        and must then still be recognised, however far its dealer has moved on meanwhile.
        exhaustive: every comparison worked out and the engine asked at every judgement, nothing
        kept from one to the next (outcomes.py, engine.Matcher): the definition the core must
        equal, for tests. alerts_only: the outputs a backtest shows, no more: an alert's opening
        and resolve, the evaluations; not the later signals of a firing alert (its count still
        kept) nor the dealers' standings."""
        self.states: dict[str, DealerState] = states if states is not None else {}
        self.forget_ids_when_judging = forget_ids_when_judging
        self.exhaustive = exhaustive
        self.alerts_only = alerts_only
        self.dirty: set[str] = set()  # dealers changed since the last save
        self._rejudge: set[str] = set()  # dealers whose every outlet and plan is judged next (a new policy)
        self._rules: dict[str, tuple[CompiledRule, ...]] = {}
        self._matchers: dict[str, Matcher] = {}  # scope -> the engine's rules of that scope
        self._values: Mapping[str, float] = {}  # the dealer measures of the judgement under way
        self.deadline_kinds: dict[str, str] = {}  # dealer -> why its next deadline is not a midnight (metrics)
        self.use(policy)

    def use(self, policy: Policy) -> list[Output]:
        """Switch to a policy (hot reload); dealer state is kept. Open episodes of rules that
        are gone are resolved. All or nothing: the new rules are built in the engine before
        anything is switched; if that fails, the running policy stays as it was."""
        rules = {scope: policy.scoped(scope) for scope in SCOPES}
        built: dict[str, Matcher] = {}
        try:
            for scope, scoped in rules.items():
                if scoped:  # an engine ruleset only for a scope that has rules
                    outcomes = None if self.exhaustive or scope == "dealer" else ex.outcome_key([r.condition for r in scoped])
                    built[scope] = Matcher.acquire({r.id: r.pattern for r in scoped}, outcomes)
        except BaseException:
            for matcher in built.values():
                matcher.release()
            raise
        old = self._matchers
        self.policy = policy
        self._rules, self._matchers = rules, built
        self._outcomes = Outcomes([r.condition for r in rules["dealer"]], policy.measures)
        self._dealer_ids = tuple(EpisodeKey.text(r.id, None) for r in rules["dealer"])
        self._running: tuple[dt.date | None, dict[str, tuple[Any, incentives.Period]]] = (None, {})  # a day's incentive periods
        # what next_deadline asks of every dealer, worked out once per policy: what changes between
        # events (the windows, each edge of a source looked up once unless exhaustive: each
        # window's own next change; the outlet coverage), the ages' crossings
        self._windows = WindowEdges(
            (m, 0) for m in policy.measures.values() if isinstance(m, WindowMeasure) and not self.exhaustive
        )
        self._changing = [
            m.next_change
            for m in policy.measures.values()
            if getattr(m, "next_change", None) is not None and (self.exhaustive or not isinstance(m, WindowMeasure))
        ]
        crossings = {(name, days * DAY + offset) for rule in rules["dealer"] for name, days, offset in rule.age_thresholds}
        self._age_crossings = [(policy.measures[name].reference, after) for name, after in sorted(crossings)]
        self._subject_crossings: subjects.Crossings = {
            scope: tuple(sorted({c for rule in rules[scope] for c in rule.age_thresholds})) for scope in network.SCOPES
        }
        self._scope_of = {rule.id: rule.spec.scope for rule in policy.rules}
        self._every_subject_at_midnight = {scope: any(r.ages_at_midnight for r in rules[scope]) for scope in network.SCOPES}
        for previous in old.values():
            previous.release()  # its ruleset serves the next policy: no growth per reload
        for state in self.states.values():  # other rules, other crossings: every subject judged again
            state.subject_deadlines = state.outcomes = None
        self._rejudge = set(self.states)
        return self._close_orphans()

    def close(self) -> None:
        """Release the engine's rulesets (for short-lived cores: replays, tests)."""
        for matcher in self._matchers.values():
            matcher.release()
        self._matchers = {}

    def _close_orphans(self) -> list[Output]:
        known = {rule.id for rule in self.policy.rules}
        outputs: list[Output] = []
        for state in self.states.values():
            for key in [k for k in state.episodes if EpisodeKey.parse(k).rule_id not in known]:
                episode = state.episodes.pop(key)
                outputs.append(self._orphan_signal(state, key, episode))
                self.dirty.add(state.dealer_id)
        return outputs

    def _orphan_signal(self, state: DealerState, key: str, episode: Episode) -> AlertSignal:
        parsed = EpisodeKey.parse(key)
        rule_id, subject = parsed.rule_id, parsed.subject
        return AlertSignal(
            alert_id=episode.alert_id,
            state="resolved",
            rule_id=rule_id,
            dealer_id=state.dealer_id,
            subject=subject,
            severity="info",
            summary=f"Rule {rule_id} was removed from the policy.",
            policy_version=self.policy.version,
            opened_at=utc(episode.opened_at),
            at=utc(state.latest or episode.opened_at),
            firing_count=episode.count,
        )

    # --- inputs ---

    def handle(self, event: Event) -> list[Output] | None:
        """Count one event and judge its dealer; None if the event was already counted.
        Raises TooLate for an event older than the lateness bound, LimitReached for one that
        would make the dealer keep more than a bound allows. All or nothing: if judging raises,
        the dealer is left exactly as it was (the event is not counted)."""
        state = self.states.get(event.dealer_id)
        if state is not None and state.knows(event):
            return None
        at = ts(event.occurred_at)
        if state is not None and state.latest is not None and at < state.latest - self.policy.lateness:
            raise TooLate(
                f"event at {event.occurred_at.isoformat()} is more than {self.policy.spec.lateness} "
                f"older than dealer {event.dealer_id}'s latest time {utc(state.latest).isoformat()}"
            )
        created = state is None
        state = self.states[event.dealer_id] = DealerState(event.dealer_id) if state is None else state
        undo = state.begin()
        try:
            new_day = self._new_day(state, max(at, state.latest or at))
            first_seen = state.first_seen
            fed = state.apply(event, self.policy.sources.get(event.type, ()), undo)
            touched = network.apply(state, event, at, self.policy.calendar, undo)
            changes = Changes(fed, bool(touched) or network.is_network_event(event), state.first_seen != first_seen)
            support_id = support.apply(state, event, at, undo)
            counted = bool(self.policy.spec.incentives) and incentives.apply(state, event, at, self.policy.calendar, undo)
            t = max(at, state.latest or at)
            outputs: list[Output] = self._judge_dealer(state, t, event, changes, touched, new_day, undo)
            if isinstance(event, PROMOTION_EVENTS):
                outputs += self._judge_promotion(state, event.promotion_id, t, event, undo)
            if new_day or isinstance(event, Sale):
                outputs += self._judge_running_promotions(state, t, event, undo)
            if isinstance(event, SupportDispatched) and support_id is not None:
                outputs += self._judge_support(state, support_id, t, event.type, undo)
            outputs += self._judge_rest(state, t, new_day or counted, undo)
            self._prune(state, new_day, undo)
        except BaseException:
            if created:
                del self.states[event.dealer_id]
            else:
                undo.rollback()
            raise
        self._judged(state, new_day)
        return outputs

    def tick(self, dealer_id: str, t: float) -> list[Output]:
        """Judge a dealer at time t without a new event (the clock); all or nothing, like handle."""
        state = self.states[dealer_id]
        t = max(t, state.latest or t)
        new_day = self._new_day(state, t)
        if not new_day and (quiet := self._quiet_tick(state, t)) is not None:
            return quiet
        undo = state.begin()
        try:
            outputs = self._judge_dealer(state, t, None, None, set(), new_day, undo)
            if new_day:
                outputs += self._judge_running_promotions(state, t, None, undo)
            outputs += self._judge_rest(state, t, new_day, undo)
            self._prune(state, new_day, undo)
        except BaseException:
            undo.rollback()
            raise
        self._judged(state, new_day)
        return outputs

    def _quiet_tick(self, state: DealerState, t: float) -> list[Output] | None:
        """A deadline within a day at which nothing but the dealer rules is judged (no outlet,
        plan or feedback due, no support, no promotion running) and none of them holds or has an
        episode open: its outputs (a standing, at most) without an undo log or the housekeeping,
        which have nothing to do then. None: not such a deadline, judge it in full."""
        if (
            not self._rules["dealer"]
            or self.exhaustive
            or state.supports
            or state.dealer_id in self._rejudge
            or any(promotion.over is None for promotion in state.promotions.values())
            or any(rule_id in state.episodes for rule_id in self._dealer_ids)  # (an episode of a dealer rule: its id)
        ):
            return None
        calendar = self.policy.calendar
        if network.has_subjects(state) or state.episodes:
            due = subjects.deadlines_of(state, self._subject_crossings, state.latest or t, calendar).next()
            if due is not None and due <= t:
                return None
        values = DealerValues(self.policy.measures, state, t, calendar)
        key = self._outcomes.key(values, state.outcomes, state.latest, calendar)
        if self._matchers["dealer"].answer(key, values.all):
            return None  # a rule holds: an episode opens (in full)
        self._values = values
        standing = self._standing(state, t)
        state.latest, state.outcomes = t, key
        self._judged(state, False)
        return [] if standing is None else [standing]

    def _new_day(self, state: DealerState, t: float) -> bool:
        """The dealer's first judgement of a local day (its housekeeping, its subjects' values)."""
        return state.latest is None or t >= self.policy.calendar.next_midnight(state.latest)

    def _judged(self, state: DealerState, new_day: bool) -> None:
        self.dirty.add(state.dealer_id)
        self._rejudge.discard(state.dealer_id)
        if new_day:
            state.compact_codes()  # changes no value: after the judgement stands

    def forget_ids(self, dealer_id: str) -> None:
        """Live, before a state is stored: forget the ids of events more than the lateness (and a
        day) older than where the dealer stood when it was *last* stored. The messages of the
        batch being stored now, and of the one before (whose ack may not have reached the
        broker), are still recognised when they are delivered again; older ones were acked
        before the confirms of this batch's outputs came back on the same connection."""
        state = self.states[dealer_id]
        if state.saved_latest is not None:
            state.forget_ids(state.saved_latest - self.policy.lateness - DAY)
        state.saved_latest = state.latest

    def next_deadline(self, dealer_id: str) -> float | None:
        """The earliest time after the dealer's last judgement at which a judgement can change."""
        state = self.states[dealer_id]
        t = state.latest
        if t is None:
            return None
        calendar = self.policy.calendar
        best, kind = calendar.next_midnight(t), "midnight"
        change = self._windows.next_change(state, t)
        if change is not None and t < change < best:
            best, kind = change, "window"
        for next_change in self._changing:
            change = next_change(state, t)
            if change is not None and t < change < best:
                best, kind = change, "window"
        for reference_of, after in self._age_crossings:
            reference = reference_of(state)
            if reference is not None and t < reference + after < best:
                best, kind = reference + after, "age"
        if network.has_subjects(state):
            crossing = subjects.deadlines_of(state, self._subject_crossings, t, calendar).next()
            if crossing is not None and t < crossing < best:
                best, kind = crossing, "age"
        if kind == "midnight":  # (most deadlines: nothing kept for them)
            self.deadline_kinds.pop(dealer_id, None)
        else:
            self.deadline_kinds[dealer_id] = kind
        return best

    def measures(self, dealer_id: str, t: float) -> dict[str, float]:
        return self.measures_of(self.states[dealer_id], t)

    def measures_of(self, state: DealerState, t: float) -> dict[str, float]:
        calendar = self.policy.calendar
        values = {name: m.value(state, t, calendar) for name, m in self.policy.measures.items()}
        return {name: value for name, value in values.items() if value is not None}

    # --- judging ---

    def _judge_dealer(
        self,
        state: DealerState,
        t: float,
        trigger: Event | None,
        changes: Changes | None,
        touched: network.Touched,
        new_day: bool,
        undo: Undo,
    ) -> list[Output]:
        """changes: what the event (`trigger`) changed of the dealer's measures."""
        previous = state.latest
        state.latest = t
        calendar = self.policy.calendar
        values = self._values = DealerValues(self.policy.measures, state, t, calendar)
        outputs: list[Output] = []
        if self._rules["dealer"]:
            matcher = self._matchers["dealer"]
            if self.exhaustive:
                holding = set(matcher.match(values.all()))
            else:  # only the comparisons whose measures can have changed are worked out again
                key = state.outcomes = self._outcomes.key(values, state.outcomes, previous, calendar, changes)
                holding = set(matcher.answer(key, values.all))
            for rule in self._rules["dealer"] if holding or state.episodes else ():
                if rule.spec.kind == "event" and (trigger is None or trigger.type not in rule.spec.trigger):
                    continue  # event rules are judged on their events only
                signal = self._episode(state, rule, None, rule.id in holding, t, values, None, None, undo)
                if signal:
                    outputs.append(signal)
        if network.has_subjects(state) or state.episodes:  # most dealers have none
            outputs += self._judge_subjects(state, t, previous if previous is not None else t, touched, new_day, undo)
        return outputs

    def _judge_subjects(
        self, state: DealerState, t: float, previous: float, touched: network.Touched, new_day: bool, undo: Undo
    ) -> list[Output]:
        """The outlets and plans that can have changed (subjects.py), each with an open episode
        whose subject is gone among them."""
        calendar = self.policy.calendar
        deadlines = subjects.deadlines_of(state, self._subject_crossings, previous, calendar)
        wanted: dict[str, set[str]] = {scope: set() for scope in network.SCOPES}
        for scope, subject_id in [*touched, *deadlines.pop_due(t)]:
            wanted[scope].add(subject_id)
        everything = state.dealer_id in self._rejudge
        if everything or new_day:
            for key in map(EpisodeKey.parse, state.episodes):
                scope_of_rule = self._scope_of.get(key.rule_id)
                if scope_of_rule in wanted and key.subject is not None:
                    wanted[scope_of_rule].add(key.subject)
            for scope in network.SCOPES:
                if everything or self._every_subject_at_midnight[scope]:
                    wanted[scope].update(network.subject_ids(state, scope))
        outputs: list[Output] = []
        for scope in network.SCOPES:
            rules = self._rules[scope]
            for subject_id in sorted(wanted[scope]) if rules else ():
                subject = network.SUBJECT[scope](state, subject_id, t, calendar) or network.NO_SUBJECT
                holding = set(self._matchers[scope].match(subject.values)) if subject.values else set()
                for rule in rules:
                    signal = self._episode(
                        state, rule, subject_id, rule.id in holding, t, subject.values, subject.owner, subject.names, undo
                    )
                    if signal:
                        outputs.append(signal)
                deadlines.set((scope, subject_id), subjects.next_crossing(subject, self._subject_crossings[scope], t))
        return outputs

    def _judge_running_promotions(self, state: DealerState, t: float, event: Event | None, undo: Undo) -> list[Output]:
        """Condition rules on promotions (#24: behind expectation while it runs): every promotion
        not over yet, or with an episode open, at each sale and the first judgement of a day."""
        rules = [rule.id for rule in self._rules["promotion"] if rule.spec.kind == "condition"]
        if not rules or not state.promotions:
            return []
        judged = getattr(event, "promotion_id", None)
        episodes = state.episodes
        outputs: list[Output] = []
        for promotion_id, promotion in list(state.promotions.items()):
            if promotion_id != judged and (
                promotion.over is None or any(EpisodeKey.text(rule_id, promotion_id) in episodes for rule_id in rules)
            ):
                outputs += self._judge_promotion(state, promotion_id, t, None, undo)
        return outputs

    def _judge_rest(self, state: DealerState, t: float, incentives_due: bool, undo: Undo) -> list[Output]:
        """What follows a dealer's judgement: supports whose end is reached, incentive programs
        (each day, and at each sale or target), and the dealer's standing (support priorities)."""
        calendar = self.policy.calendar
        outputs: list[Output] = []
        for support_id in support.due(state, t, calendar) if state.supports else ():
            outputs += self._judge_support(state, support_id, t, support.ENDED, undo)
        if incentives_due and self._rules["incentive"]:
            outputs += self._judge_incentives(state, t, undo)
        standing = self._standing(state, t)
        if standing is not None:
            outputs.append(standing)
        return outputs

    def _standing(self, state: DealerState, t: float) -> DealerStanding | None:
        """The dealer's standing (support priorities) when it changed since the last one sent."""
        spec = self.policy.spec.support
        if spec is None or self.alerts_only:
            return None
        running = support.running(state, t, self.policy.calendar) if state.supports else None
        gaps = (
            round(priority.target_gap(self._values, spec.measures), 2),
            round(priority.baseline_gap(self._values, spec.measures), 2),
        )
        standing = (*gaps, state.region, state.name, running, spec.weights)
        if standing == state.standing:
            return None
        state.standing = standing
        return DealerStanding.model_construct(  # built unchecked: every field is made here (one a judgement, most of the time)
            kind="dealer-standing",
            dealer_id=state.dealer_id,
            dealer_name=state.name,
            region=state.region,
            target_gap=gaps[0],
            baseline_gap=gaps[1],
            running=running,
            weights=spec.weights,
            at=utc(t),
            policy_version=self.policy.version,
        )

    def _judge_support(self, state: DealerState, support_id: str, t: float, trigger: str, undo: Undo) -> list[Output]:
        """Support rules on `support.dispatched`, and at its end (`support.ended`: the event or
        the clock), whose evaluation goes with them."""
        assert state.supports is not None
        found = state.supports[support_id]
        calendar = self.policy.calendar
        values = support.measures(found, state, t, calendar)
        matcher = self._matchers.get(support.SCOPE)
        holding = set(matcher.match(values)) if matcher is not None else set()
        outputs: list[Output] = []
        names = support.names(support_id, found)
        for rule in self._rules[support.SCOPE]:
            if trigger in rule.spec.trigger:
                signal = self._episode(state, rule, support_id, rule.id in holding, t, values, found.owner, names, undo)
                if signal:
                    outputs.append(signal)
        if trigger == support.ENDED and found.judged_end is None and found.kind is not None:
            outputs.append(support.evaluation(state, support_id, values, t, calendar, self.policy.version))
            support.ended(state, support_id, t, calendar, undo)
        return outputs

    def _judge_incentives(self, state: DealerState, t: float, undo: Undo) -> list[Output]:
        """Each program's running period, and any period with an episode still open (it resolves)."""
        rules = self._rules[incentives.SCOPE]
        today = self.policy.calendar.local(t).date()
        if self._running[0] != today:  # the same periods for every dealer judged that day
            self._running = (today, incentives.current(self.policy.spec.incentives, t, self.policy.calendar))
        running = self._running[1]
        wanted = set(running)
        if state.episodes:
            ids = {rule.id for rule in rules}
            for key in state.episodes:
                rule_id, subject = EpisodeKey.parts(key)
                if subject and rule_id in ids:
                    wanted.add(subject)
        outputs: list[Output] = []
        for subject_id in sorted(wanted):
            program_period = running.get(subject_id)
            values = {} if program_period is None else incentives.measures(state, *program_period, today)
            holding = set(self._matchers[incentives.SCOPE].match(values)) if values else set()
            program_id, _, period = subject_id.partition("@")
            names = {"program_id": program_id, "period": period}
            for rule in rules:
                signal = self._episode(state, rule, subject_id, rule.id in holding, t, values, None, names, undo)
                if signal:
                    outputs.append(signal)
        return outputs

    def _judge_promotion(
        self, state: DealerState, promotion_id: str, t: float, trigger: Event | None, undo: Undo
    ) -> list[Output]:
        promotion = state.promotions[promotion_id]
        values = promotion_measures(promotion, state, t, self.policy.calendar)
        matcher = self._matchers.get("promotion")
        holding = set(matcher.match(values)) if matcher is not None else set()
        outputs: list[Output] = []
        for rule in self._rules["promotion"]:
            if rule.spec.kind == "event" and (trigger is None or trigger.type not in rule.spec.trigger):
                continue
            signal = self._episode(
                state, rule, promotion_id, rule.id in holding, t, values, promotion.owner, {"promotion_id": promotion_id}, undo
            )
            if signal:
                outputs.append(signal)
        if isinstance(trigger, PromotionEnded):
            outputs.append(self._evaluation(state, promotion_id, promotion, values, t))
        return outputs

    def _episode(
        self,
        state: DealerState,
        rule: CompiledRule,
        subject: str | None,
        holds: bool,
        t: float,
        values: Mapping[str, float],
        owner: str | None,
        names: dict[str, Any] | None,
        undo: Undo,
    ) -> AlertSignal | None:
        """Open, continue or close the (rule, dealer, subject) episode."""
        key = EpisodeKey.text(rule.id, subject)
        episode = state.episodes.get(key)
        if holds or episode is not None:
            undo.entry(state.episodes, key)
        if holds:
            if episode is None:
                alert_id = episode_alert_id(rule.id, state.dealer_id, subject, utc(t))
                episode = state.episodes[key] = Episode(alert_id, t, 0)
            episode.count += 1
            if episode.count > 1 and self.alerts_only:
                return None  # fired again: nothing a backtest shows
            kind: Literal["firing", "resolved"] = "firing"
        elif episode is not None and rule.spec.kind == "condition":
            del state.episodes[key]
            kind = "resolved"
        else:
            return None
        return make_signal(kind, rule, state, subject, episode, t, values, owner, self.policy.version, names)

    def _evaluation(
        self, state: DealerState, promotion_id: str, promotion: Promotion, values: dict[str, float], t: float
    ) -> PromotionEvaluation:
        roi = values.get("promotion_roi")
        spend = values.get("promotion_spend", 0.0)
        verdict: Literal["effective", "ineffective", "no-spend"] = (
            "no-spend" if not spend else ("effective" if roi is not None and roi >= 1.0 else "ineffective")
        )
        return PromotionEvaluation(
            dealer_id=state.dealer_id,
            promotion_id=promotion_id,
            owner=promotion.owner,
            starts_on=promotion.starts_on,
            ends_on=promotion.ends_on,
            days=values.get("promotion_days"),
            sales_during=values.get("promotion_sales"),
            sales_before=values.get("promotion_sales_before"),
            spend=spend,
            budget=promotion.budget,
            unapproved_spend=promotion.unapproved_spend,
            ratio=roi,
            expected_sales=values.get("promotion_expected_sales"),
            expected_met=None
            if "promotion_expected_sales" not in values
            else values.get("promotion_sales", 0.0) >= values["promotion_expected_sales"],
            verdict=verdict,
            at=utc(t),
            policy_version=self.policy.version,
        )

    def _prune(self, state: DealerState, new_day: bool, undo: Undo) -> None:
        """A promotion never ended is closed a lateness after its last day (at the first judgement
        then). Once a day, forget what no judgement can reach any more: series values past every
        window (and every open promotion's days), outlets and plans (network.prune), event ids (a
        replay; live forgets them when it stores), promotions ended 90 days ago; a value that
        leaves every window during a day stays until the next (it counts in none)."""
        t = state.latest
        assert t is not None  # pruned only after a judgement
        policy = self.policy
        for promotion_id, promotion in state.promotions.items():
            if promotion.over is None:
                freeze_if_final(state, promotion_id, promotion, t, policy, undo)
        if not new_day:
            return
        # judgement time never goes back, so nothing older than a window's reach counts again
        cutoffs = {key: t - reach for key, reach in policy.source_horizons.items()}
        net_sales = cutoffs.get(NET_SALES.key, t - policy.lateness)
        for promotion in state.promotions.values():
            if promotion.over is None and (needed := sales_needed_from(promotion, policy.calendar)) is not None:
                net_sales = min(net_sales, needed)  # its "before" period is still needed
        if state.supports and (needed := support.sales_needed_from(state, policy.calendar)) is not None:
            net_sales = min(net_sales, needed)
        cutoffs[NET_SALES.key] = net_sales
        state.prune(cutoffs, undo)
        net = state.series.get(NET_SALES.key)
        if net is not None and not len(net.times):
            del state.series[NET_SALES.key]  # (the series map is put back whole by an undo)
        network.prune(state, t, policy.lateness, policy.calendar, undo)
        if self.forget_ids_when_judging:  # ids older than the lateness bound can only be too late
            state.forget_ids(t - policy.lateness - DAY)
        state.forget_promotions(t - PROMOTIONS_KEPT, undo)
        support.prune(state, t, undo)
        incentives.prune(state, t, policy.calendar, undo)
