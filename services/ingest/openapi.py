"""The event contract in the OpenAPI document (the body is parsed by hand, for NDJSON and
integrator-friendly errors, so FastAPI cannot infer it)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

from services.common.events import Event

_REF = "#/components/schemas/{model}"
_schema = TypeAdapter(Event | list[Event]).json_schema(ref_template=_REF)
EVENT_SCHEMAS: dict[str, Any] = _schema.pop("$defs", {})

EVENTS_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "One event, a JSON array of up to 1,000 events, or NDJSON (one event per line).",
        "content": {
            "application/json": {"schema": _schema},
            "application/x-ndjson": {"schema": {"type": "string", "description": "One event object per line."}},
        },
    }
}


def install(app: FastAPI) -> None:
    """Add the event models to the app's OpenAPI components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document: dict[str, Any] = original()
        document.setdefault("components", {}).setdefault("schemas", {}).update(EVENT_SCHEMAS)
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document
