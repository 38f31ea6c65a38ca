"""Bounded by design (#22), in the rules core: what one dealer or one source can make rules keep
has a bound, reaching it is a clear refusal (never a stall), a judgement costs what changed, and
a failing judgement is still all or nothing."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from factories import network_event, outlet_registered, promotion_planned, promotion_spend, sale, visit, visit_planned
from pydantic import ValidationError

from services.common import limits
from services.common.alerts import AlertSignal
from services.common.events import parse_event
from services.rules.core import RulesCore
from services.rules.judge import Judge
from services.rules.store import from_doc, to_doc

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def kept(state):
    """A state's document, its lists in a fixed order (an undo may put an entry back last)."""
    doc = to_doc(state)
    for name in ("episodes", "outlets", "plans", "promotions"):
        doc[name] = sorted(doc[name], key=lambda item: item.get("key") or item.get("id"))
    return doc


def handle(core, *events):
    outputs = []
    for event in events:
        outputs += core.handle(parse_event(event)) or []
    return outputs


# --- subjects per dealer ---


@pytest.mark.parametrize(
    ("kind", "bound", "make"),
    [
        ("plans", "MAX_PLANS", lambda i: visit_planned("D-L", T0, f"PL-{i}", dt.date(2026, 2, 1))),
        ("outlets", "MAX_OUTLETS", lambda i: outlet_registered("D-L", T0, f"O-{i}")),
        ("promotions", "MAX_PROMOTIONS", lambda i: promotion_planned("D-L", T0, f"P-{i}")),
    ],
)
def test_a_dealer_keeps_at_most_its_bound_and_the_next_is_refused_naming_it(core, monkeypatch, kind, bound, make):
    monkeypatch.setattr(limits, bound, 5)
    handle(core, *[make(i) for i in range(5)])
    before = to_doc(core.states["D-L"])
    assert before["counts"][kind] == 5  # what ingest reads at the door
    with pytest.raises(limits.LimitReached, match="the limit"):
        handle(core, make(5))
    assert to_doc(core.states["D-L"]) == before  # not counted: nothing of it stays
    handle(core, make(2))  # one it keeps already is no new one


def test_a_promotion_counts_at_most_its_bound_of_spends(core, monkeypatch):
    monkeypatch.setattr(limits, "MAX_SPENDS", 3)
    handle(core, promotion_planned("D-S", T0, "P-1"), *[promotion_spend("D-S", T0, "P-1", "1") for _ in range(3)])
    with pytest.raises(limits.LimitReached, match="3 spends"):
        handle(core, promotion_spend("D-S", T0, "P-1", "1"))
    assert core.states["D-S"].promotions["P-1"].spend == 3


def test_a_promotion_lasts_at_most_366_days_by_the_contract():
    event = promotion_planned("D-P", T0, "P-century")
    with pytest.raises(ValidationError, match="at most 366 days"):
        parse_event({**event, "starts_on": "2000-01-01", "ends_on": "2099-12-31"})
    parse_event({**event, "starts_on": "2024-01-01", "ends_on": "2024-12-31"})  # a leap year: 366 days


def test_a_promotion_never_ended_is_closed_a_lateness_after_its_end_with_its_numbers_final(core, default_policy):
    """Its sales no longer hold the dealer's history; when it is ended at last, it is judged on
    the numbers it had when it closed."""
    spend = promotion_spend("D-C", T0 + 3 * DAY, "P-1", "100")
    history = [sale("D-C", T0 - 20 * DAY + i * DAY, "100") for i in range(40)]  # before, during and after it
    handle(core, *sorted([promotion_planned("D-C", T0, "P-1"), spend, *history], key=lambda e: e["occurred_at"]))
    promotion = core.states["D-C"].promotions["P-1"]
    assert promotion.closed_at is None
    lateness = dt.timedelta(seconds=default_policy.lateness)
    closed_at = T0 + 15 * DAY + lateness  # ends_on is T0 + 14 days: its end is the midnight after
    core.tick("D-C", closed_at.timestamp())
    assert promotion.closed_at is not None and promotion.sales_during == 1500 and promotion.sales_before == 1500
    core.tick("D-C", (closed_at + 80 * DAY).timestamp())
    assert not any(len(series.times) for series in core.states["D-C"].series.values())  # nothing kept for it
    ended = handle(core, network_event("promotion.ended", "D-C", closed_at + 81 * DAY, promotion_id="P-1"))
    evaluation = next(o for o in ended if not isinstance(o, AlertSignal))
    assert (evaluation.sales_during, evaluation.sales_before, evaluation.verdict) == (1500, 1500, "ineffective")
    core.tick("D-C", (closed_at + 200 * DAY).timestamp())
    assert core.states["D-C"].promotions == {}  # forgotten 90 days after it ended


# --- what a judgement looks at ---


class JudgeEverything(RulesCore):
    """The reference: every outlet and plan at every judgement (what the core did before #22)."""

    def handle(self, event):
        self._rejudge.add(event.dealer_id)
        return super().handle(event)

    def tick(self, dealer_id, t):
        self._rejudge.add(dealer_id)
        return super().tick(dealer_id, t)


def episodes(outputs):
    """Openings and resolutions (a firing signal of an open episode says nothing new)."""
    return [
        (o.rule_id, o.subject, o.state, o.at)
        for o in outputs
        if isinstance(o, AlertSignal) and (o.state == "resolved" or o.firing_count == 1)
    ]


@pytest.mark.parametrize("seed", range(6))
def test_judging_what_changed_opens_and_resolves_what_judging_everything_does(default_policy, seed):
    rng = random.Random(seed)
    events, at = [], T0
    for _ in range(400):
        at += dt.timedelta(hours=rng.choice([1, 5, 13, 30]))
        outlet, plan = f"O-{rng.randrange(12)}", f"PL-{rng.randrange(12)}"
        day = (at + dt.timedelta(days=rng.randrange(-3, 20))).date()
        events.append(
            rng.choice(
                [
                    outlet_registered("D-R", at, outlet),
                    network_event("outlet.closed", "D-R", at, outlet_id=outlet),
                    sale("D-R", at, outlet_id=outlet),
                    visit_planned("D-R", at, plan, day, kind=rng.choice(["routine", "symposium"])),
                    network_event("visit.plan_cancelled", "D-R", at, plan_id=plan),
                    {
                        **visit("D-R", at, kind=rng.choice(["routine", "symposium"])),
                        **({"plan_id": plan} if rng.random() < 0.3 else {}),
                    },
                ]
            )
        )
    results = []
    for kind in (RulesCore, JudgeEverything):
        core = kind(default_policy)
        judge = Judge(core)
        outputs = []
        for event in events:
            outputs += judge.handle(parse_event(event))[0]
        outputs += judge.advance((at + 120 * DAY).timestamp())
        results.append(episodes(outputs))
        core.close()
    assert results[0] == results[1]
    assert {rule for rule, *_ in results[0]} >= {"outlet-silent", "planned-visit-missed"}  # the case is not empty


def test_a_judgement_that_fails_late_leaves_outlets_plans_and_episodes_as_they_were(core):
    handle(core, outlet_registered("D-F", T0, "O-1"), visit_planned("D-F", T0, "PL-1", dt.date(2026, 1, 6)))
    handle(core, sale("D-F", T0 + 50 * DAY, outlet_id="O-2"))  # PL-1 missed, O-1 silent: episodes open
    state = core.states["D-F"]
    assert {key.split("|")[0] for key in state.episodes} >= {"outlet-silent", "planned-visit-missed"}
    before = kept(state)
    real = core._prune

    def fail(*args):
        raise ArithmeticError("a bug, after everything else of the judgement")

    core._prune = fail
    for event in [
        outlet_registered("D-F", T0 + 51 * DAY, "O-3"),  # a new outlet
        sale("D-F", T0 + 51 * DAY, outlet_id="O-1"),  # O-1's episode resolves
        network_event("outlet.closed", "D-F", T0 + 51 * DAY, outlet_id="O-1"),
        visit("D-F", T0 + 51 * DAY) | {"plan_id": "PL-1"},  # PL-1 carried out
        visit_planned("D-F", T0 + 51 * DAY, "PL-2", dt.date(2026, 3, 1)),
    ]:
        with pytest.raises(ArithmeticError):
            core.handle(parse_event(event))
        assert kept(core.states["D-F"]) == before
    with pytest.raises(ArithmeticError):
        core.tick("D-F", (T0 + 60 * DAY).timestamp())
    assert kept(core.states["D-F"]) == before
    core._prune = real
    resolved = handle(core, sale("D-F", T0 + 52 * DAY, outlet_id="O-1"))
    assert [(o.rule_id, o.state) for o in resolved if o.subject == "O-1"] == [("outlet-silent", "resolved")]


# --- per process ---


def test_outlet_ids_are_coded_per_dealer_and_the_codes_of_old_outlets_are_reclaimed(core):
    for day in range(200):  # a new outlet every day, 10 sales each: only the last 30 days are kept
        at = T0 + day * DAY
        handle(core, *[sale("D-T", at + dt.timedelta(minutes=i), outlet_id=f"O-{day}") for i in range(10)])
    state = core.states["D-T"]
    assert len(state.codes) <= 2 * 31 + 64
    copy = from_doc(to_doc(state))  # stored as text: the codes are the state's own
    assert core.measures_of(copy, state.latest) == core.measures_of(state, state.latest)
