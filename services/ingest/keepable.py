"""Events that would make a dealer keep more than rules can are refused at the door (422,
naming the limit), like events too late to count: after a 202 they could only be dead-lettered.

Rules stores, with each dealer's state, how many visit plans, outlets, promotions, feedback
items and support records it keeps
(services/common/limits.py). A request that brings a dealer more new ones than it has room for
is refused; ids it keeps already are not new, so a retried request is accepted again. (Two
requests at once can both pass: rules then refuses the excess with the same reason.)
"""

from __future__ import annotations

from services.common import kept, limits
from services.common.events import Event
from services.common.mongo import Database

from .parsing import FieldError

# what each kind of subject is called in a message, and the events that add one
KINDS = {
    "plans": ("visit plans", ("visit.planned", "visit.plan_cancelled"), "plan_id"),
    "outlets": ("outlets", ("outlet.registered", "outlet.closed"), "outlet_id"),
    "promotions": (
        "promotions",
        ("promotion.planned", "promotion.approved", "promotion.spend", "promotion.ended"),
        "promotion_id",
    ),
    "feedback": ("feedback items", ("feedback.received", "feedback.answered"), "feedback_id"),
    "supports": ("support records", ("support.dispatched", "support.ended"), "support_id"),
}


async def over_limits(db: Database, events: list[Event]) -> list[FieldError]:
    wanted: dict[tuple[str, str], dict[str, int]] = {}  # (dealer, kind) -> id -> first index
    for index, event in enumerate(events):
        for kind, (_, types, field) in KINDS.items():
            if event.type in types:
                wanted.setdefault((event.dealer_id, kind), {}).setdefault(getattr(event, field), index)
    if not wanted:
        return []
    counts = await kept.kept(db, sorted({dealer for dealer, _ in wanted}))
    errors = []
    for (dealer, kind), ids in wanted.items():
        stored, limit = counts.get(dealer, {}).get(kind, 0), limits.COUNTED[kind]
        if stored + len(ids) <= limit:
            continue
        known = await kept.kept_ids(db, dealer, kind) if stored else set()  # (a retry brings nothing new)
        new = [(index, subject) for subject, index in ids.items() if subject not in known]
        name, _, field = KINDS[kind]
        for index, subject in new[max(0, limit - stored) :]:
            errors.append(
                FieldError(
                    index,
                    field,
                    f"over a limit: dealer {dealer!r} keeps {stored:,} {name} and this request brings {len(new):,} more; "
                    f"the limit is {limit:,} (docs/limits.md) — {subject!r} is not accepted",
                )
            )
    return sorted(errors, key=lambda error: error.index or 0)
