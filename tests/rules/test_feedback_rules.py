"""feedback-unanswered (#23) at its boundaries, through the real core and durable-rules: more
than 14 days without an answer fires (14 days exactly does not), an answer resolves it, an answer
in time keeps it quiet, an answer for a feedback id not received (yet) raises nothing; it names
who took the feedback down; the clock raises it exactly on time; backtest and explain show it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from factories import dealer_registered, feed, feedback_answered, feedback_received, now, sale
from histories import write

from services.cli import main
from services.common import limits
from services.common.events import parse_event
from services.rules.store import from_doc, to_doc

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DAY, SECOND = dt.timedelta(days=1), dt.timedelta(seconds=1)
RULE = "feedback-unanswered"


def signals(outputs, state="firing"):
    return [s for s in outputs if getattr(s, "rule_id", None) == RULE and s.state == state]


def test_more_than_14_days_unanswered_fires_and_names_who_took_it_down(core):
    feed(core, dealer_registered("F1", T0), feedback_received("F1", T0, "FB-1", received_by="rep-7"))
    assert not signals(feed(core, sale("F1", T0 + 14 * DAY)))  # 14 days exactly: not more
    fired = signals(feed(core, sale("F1", T0 + 14 * DAY + SECOND)))
    assert [(s.subject, s.owner) for s in fired] == [("FB-1", "rep-7")]
    assert "交货期" in fired[0].summaries["zh"] and "FB-1" in fired[0].summaries["en"]
    resolved = signals(feed(core, feedback_answered("F1", T0 + 20 * DAY, "FB-1")), "resolved")
    assert [s.subject for s in resolved] == ["FB-1"]


@pytest.mark.parametrize(
    ("answered_after", "fires"),
    [(14 * DAY, False), (15 * DAY, True), (-DAY, False)],  # in time; late (fires, then resolves); before it (a skewed clock)
)
def test_an_answer_in_time_keeps_it_quiet(core, answered_after, fires):
    look = sale("F2", T0 + 14 * DAY + SECOND)  # a judgement just after the 14 days
    answer = feedback_answered("F2", T0 + answered_after, "FB-1")
    events = sorted([feedback_received("F2", T0, "FB-1"), answer, look], key=lambda e: e["occurred_at"])
    outputs = feed(core, *events)
    assert bool(signals(outputs)) is fires
    assert bool(signals(outputs, "resolved")) is fires  # a late answer resolves it


def test_an_answer_for_feedback_not_received_raises_nothing_and_answers_it_when_it_comes(core):
    assert not signals(feed(core, feedback_answered("F3", T0, "FB-x"), sale("F3", T0 + 30 * DAY)))  # never received
    # the answer came first (two systems): the feedback that follows is answered already
    feed(core, feedback_answered("F3", T0 + 30 * DAY, "FB-y"))
    assert not signals(feed(core, feedback_received("F3", T0 + 30 * DAY + SECOND, "FB-y"), sale("F3", T0 + 60 * DAY)))


def test_the_clock_raises_it_exactly_when_14_days_have_passed(core):
    feed(core, feedback_received("F4", T0, "FB-1"))
    raised = []
    for _ in range(100):
        if raised := signals(core.tick("F4", core.next_deadline("F4"))):
            break
    assert raised[0].opened_at == T0 + 14 * DAY + SECOND  # the first second past 14 days


def test_feedback_survives_storage_and_an_answered_item_is_forgotten_after_the_lateness(core):
    feed(
        core, feedback_received("F5", T0, "FB-1"), feedback_received("F5", T0, "FB-2"), feedback_answered("F5", T0 + DAY, "FB-2")
    )
    stored = from_doc(to_doc(core.states["F5"]))
    assert stored.feedback == core.states["F5"].feedback and set(stored.feedback) == {"FB-1", "FB-2"}
    feed(core, sale("F5", T0 + 400 * DAY))  # long after the lateness: the answered one is gone
    assert set(core.states["F5"].feedback) == {"FB-1"}
    assert to_doc(core.states["F5"])["counts"]["feedback"] == 1


def test_the_dealer_keeps_at_most_max_feedback_items(core, monkeypatch):
    monkeypatch.setattr(limits, "MAX_FEEDBACK", 2)
    feed(core, feedback_received("F6", T0, "FB-1"), feedback_received("F6", T0, "FB-2"))
    with pytest.raises(limits.LimitReached, match="feedback items"):
        core.handle(parse_event(feedback_received("F6", T0, "FB-3")))
    assert set(core.states["F6"].feedback) == {"FB-1", "FB-2"}  # nothing of the refused event was kept


def test_backtest_and_explain_show_unanswered_feedback(tmp_path, capsys):
    at = now() - 20 * DAY
    events = [feedback_received("F7", at, "FB-old"), feedback_received("F7", now() - DAY, "FB-new")]
    path = write(tmp_path / "feedback.ndjson", events)
    assert main(["backtest", path, "--now", now().isoformat()]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["rule_id"], line["subject"], line["state"]) for line in lines if line["rule_id"] == RULE] == [
        (RULE, "FB-old", "open")
    ]
    assert main(["explain", path, "--dealer", "F7", "--at", now().isoformat()]) == 0
    out = capsys.readouterr().out
    assert "feedback FB-old" in out and "feedback FB-new" in out and "feedback_days_unanswered > 14" in out
