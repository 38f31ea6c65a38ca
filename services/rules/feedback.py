"""Dealer feedback in the rules state (#23): each item received waits for its answer. A rule with
`scope: feedback` is judged per item (one alert episode each, like an outlet or a plan, see
network.py): `feedback_days_unanswered` is the days since it was received while no answer has
come, no value once answered (the episode resolves) and none for an answer to an item not
received (yet): an answer may arrive first.

Unanswered items are kept (at most MAX_FEEDBACK); an answered one is forgotten once the answer is
older than the lateness, like a plan carried out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.common import limits
from services.common.durations import DAY
from services.common.events import Event, FeedbackAnswered, FeedbackReceived

if TYPE_CHECKING:
    from .network import Subject
    from .state import DealerState, Undo

SCOPE = "feedback"
MEASURES = ("feedback_days_unanswered",)
NAMES = {"feedback_id", "channel", "topic"}
EVENTS = (FeedbackReceived, FeedbackAnswered)


@dataclass(slots=True)
class FeedbackItem:
    received_at: float | None = None
    channel: str = ""
    topic: str = ""
    received_by: str | None = None
    answered_at: float | None = None  # the earliest answer


def apply(state: DealerState, event: Event, at: float, undo: Undo) -> set[tuple[str, str]]:
    """The item the event changes (received or answered); the first time of each counts."""
    if isinstance(event, FeedbackReceived):
        with _changing(state, event.feedback_id, undo) as item:
            if item.received_at is None or at < item.received_at:
                item.received_at = at
            item.channel, item.topic, item.received_by = event.channel, event.topic, event.received_by
        return {(SCOPE, event.feedback_id)}
    if isinstance(event, FeedbackAnswered):
        with _changing(state, event.feedback_id, undo) as item:
            item.answered_at = at if item.answered_at is None else min(item.answered_at, at)
        return {(SCOPE, event.feedback_id)}
    return set()


@contextlib.contextmanager
def _changing(state: DealerState, feedback_id: str, undo: Undo) -> Iterator[FeedbackItem]:
    if state.feedback is None:
        state.feedback = {}
    item = state.feedback.get(feedback_id)
    if item is None and len(state.feedback) >= limits.MAX_FEEDBACK:
        raise limits.LimitReached(
            f"dealer {state.dealer_id} keeps {len(state.feedback):,} feedback items, the limit "
            f"({limits.MAX_FEEDBACK:,}: unanswered ones, and those answered within the lateness)"
        )
    undo.entry(state.feedback, feedback_id)
    if item is None:
        item = state.feedback[feedback_id] = FeedbackItem()
    yield item


def prune(state: DealerState, cutoff: float, undo: Undo) -> None:
    """Forget items answered before the cutoff (nothing can change them any more)."""
    gone = [fid for fid, item in (state.feedback or {}).items() if item.answered_at is not None and item.answered_at < cutoff]
    for fid in gone:
        assert state.feedback is not None
        undo.entry(state.feedback, fid)
        del state.feedback[fid]
    if state.feedback is not None and not state.feedback:
        state.feedback = None


def subject(state: DealerState, feedback_id: str, t: float, calendar: Any) -> Subject | None:
    """A received item; unanswered at t: the days since it was received. None: not received."""
    from .network import Subject

    found = (state.feedback or {}).get(feedback_id)
    if found is None or found.received_at is None or found.received_at > t:
        return None
    values, references = {}, {}
    if found.answered_at is None or found.answered_at > t:
        since = found.received_at
        values, references = {"feedback_days_unanswered": (t - since) / DAY}, {"feedback_days_unanswered": since}
    names = {"feedback_id": feedback_id, "channel": found.channel, "topic": found.topic}
    return Subject(values, references, owner=found.received_by, names=names)
