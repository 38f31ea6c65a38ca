"""Alert lifecycle: open -> acknowledged -> resolved, every transition kept as history.

A condition rule that stops holding resolves its alert by itself; a person can
acknowledge (with a note) and resolve (with a cause). A recurrence after
resolution is a new episode, so a new alert: transitions never reopen one.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["open", "acknowledged", "resolved"]
STATUSES: tuple[str, ...] = ("open", "acknowledged", "resolved")

# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledged": (("open",), "acknowledged"),
    "resolved": (("open", "acknowledged"), "resolved"),
}


class Acknowledge(BaseModel):
    by: str = Field(min_length=1, max_length=128, description="Who acknowledges (recorded).")
    note: str | None = Field(default=None, max_length=2000)


class Resolve(BaseModel):
    by: str = Field(min_length=1, max_length=128, description="Who resolves (recorded).")
    cause: str = Field(min_length=1, max_length=2000, description="What the cause was.")


class Expire(BaseModel):
    by: str = Field(min_length=1, max_length=128, description="Who ends the silence (recorded).")


def history_entry(action: str, by: str, at: dt.datetime, text: str | None = None) -> dict:
    return {"action": action, "by": by, "at": at, "text": text}


def transition_update(action: str, by: str, text: str | None, now: dt.datetime) -> tuple[dict, dict]:
    """(filter on the current status, update) for a person's action."""
    allowed, target = TRANSITIONS[action]
    fields = {"status": target, "updated_at": now, f"{action}_at": now, f"{action}_by": by}
    if action == "acknowledged":
        fields["acknowledged_note"] = text
    else:
        fields["resolved_cause"] = text
    update = {"$set": fields, "$push": {"history": history_entry(action, by, now, text)}}
    return {"status": {"$in": list(allowed)}}, update
