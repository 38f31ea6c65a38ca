"""Request bodies -> validated events, or a list of errors an integrator can act on.

Accepted bodies: one JSON object, a JSON array of objects, or NDJSON (one
object per line). Errors are `{index, field, message}` where `index` is the
event's position in the request (the line's position for NDJSON).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.common.events import EVENT_TYPES, Event, event_adapter

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
JSON_TYPES = ("application/json",)


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def accepted_type(content_type: str) -> bool:
    """JSON and NDJSON only: a web page elsewhere can post text/plain or a form without asking
    (no CORS preflight), never these."""
    return media_type(content_type) in JSON_TYPES + NDJSON_TYPES


@dataclass(frozen=True)
class FieldError:
    index: int | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class InvalidBatch(Exception):
    def __init__(self, errors: list[FieldError]):
        super().__init__(f"{len(errors)} invalid event(s)")
        self.errors = errors


def parse_body(
    body: bytes, content_type: str, max_events: int, window: tuple[dt.datetime, dt.datetime] | None = None
) -> list[Event]:
    """All or nothing: returns every event, or raises InvalidBatch listing every problem.
    `window`: the earliest and latest `occurred_at` accepted (ingest's clock decides the latter)."""
    items = _split(body, content_type)
    if not items:
        raise InvalidBatch([FieldError(None, None, "the request contains no events")])
    if len(items) > max_events:
        raise InvalidBatch([FieldError(None, None, f"{len(items)} events in one request; the limit is {max_events}")])
    events: list[Event] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        if isinstance(item, FieldError):
            errors.append(item)
            continue
        if not isinstance(item, dict):
            errors.append(FieldError(index, None, "each event must be a JSON object"))
            continue
        nested = [key for key, value in item.items() if isinstance(value, dict | list)]
        if nested:  # every field is a string or a number: nothing nested is ever validated
            errors += [FieldError(index, str(key), "must be a string or a number, not an object or a list") for key in nested]
            continue
        try:
            event = event_adapter.validate_python(item)
        except ValidationError as exc:
            errors.extend(_describe(index, exc))
            continue
        if window is not None and not window[0] <= event.occurred_at <= window[1]:
            errors.append(
                FieldError(
                    index,
                    "occurred_at",
                    f"must be from {_iso(window[0])} to {_iso(window[1])} "
                    "(the earliest time accepted, and a day ahead of ingest's clock at most)",
                )
            )
            continue
        events.append(event)
    if errors:
        raise InvalidBatch(errors)
    return events


def _split(body: bytes, content_type: str) -> list[Any]:
    if media_type(content_type) in NDJSON_TYPES:
        items: list[Any] = []
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                items.append(FieldError(len(items), None, f"invalid JSON: {exc}"))
            except RecursionError:
                items.append(FieldError(len(items), None, "invalid JSON: nested too deeply"))
        return items
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise InvalidBatch([FieldError(None, None, f"invalid JSON: {exc}")]) from None
    except RecursionError:
        raise InvalidBatch([FieldError(None, None, "invalid JSON: nested too deeply")]) from None
    return document if isinstance(document, list) else [document]


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _describe(index: int, exc: ValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        # A discriminated union puts the event type first in `loc`; integrators want the field.
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]
        field = ".".join(loc) or None
        kind = error["type"]
        if kind == "extra_forbidden":
            message = f"unknown field '{field}' (not part of this event type)"
        elif kind == "union_tag_invalid":
            field = "type"
            message = f"unknown event type {error['input'].get('type')!r}; expected one of {', '.join(EVENT_TYPES)}"
        elif kind == "union_tag_not_found":
            field, message = "type", "missing field 'type'"
        elif kind == "missing":
            message = f"missing field '{field}'"
        else:
            message = error["msg"].removeprefix("Value error, ")
        errors.append(FieldError(index, field, message))
    return errors
