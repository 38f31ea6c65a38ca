"""Events rules could no longer count are refused at the door (422), never accepted and dropped.

Rules judges each dealer in time order and can count an event up to the policy's lateness
older than the time the dealer was judged at (services/common/judgement_time.py). An event
older than that would be dead-lettered as too late after the 202: it is refused here instead.
(Within one request the order does not matter: ingest publishes a request's events in time order.)
"""

from __future__ import annotations

import datetime as dt

from services.common.durations import DAY
from services.common.events import Event
from services.common.judgement_time import earliest_countable
from services.common.mongo import Database

from .parsing import FieldError


async def too_late(db: Database, events: list[Event]) -> list[FieldError]:
    lateness, bounds = await earliest_countable(db, sorted({event.dealer_id for event in events}))
    if lateness is None:
        return []  # rules has judged nothing yet
    errors = []
    for index, event in enumerate(events):
        at = event.occurred_at.timestamp()
        stored = bounds.get(event.dealer_id)
        if stored is not None and at < stored:
            errors.append(
                FieldError(
                    index,
                    "occurred_at",
                    (
                        f"too late: dealer {event.dealer_id!r} has been judged up to {_iso(stored + lateness)}; events more than "
                        f"the policy's lateness ({_days(lateness)}) older than that can no longer be counted (a backfill of a "
                        f"dealer's history must come before its newer events; see 'Event time' in the README)"
                    ),
                )
            )
    return errors


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat().replace("+00:00", "Z")


def _days(seconds: float) -> str:
    return f"{seconds / DAY:g} days" if seconds >= DAY else f"{seconds:g} seconds"
