"""Alerts: list, counts, the live stream, one alert, and a person's actions (ack, resolve,
assign, findings); the causes a resolve picks from."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from services.common.timeutil import utcnow

from .. import alert as alerts
from ..alert import Acknowledge, Assign, Finding, Resolve
from ..causes import Cause, UnknownCause, resolution
from ..feed import ChangeFeed
from ..metrics import SSE_CLIENTS
from ..outbox import Outbox
from ..store import AlertStore
from ..stream import events
from .filters import AlertFilter, alert_filter

log = logging.getLogger("dealerwatch.notify")


def router(
    store: AlertStore,
    outbox: Outbox,
    feed: ChangeFeed,
    stopping: asyncio.Event,
    max_streams: int,
    causes: Callable[[], tuple[Cause, ...]],
) -> APIRouter:
    """Reads need a viewer or operator key, actions an operator key, in production mode (the
    access middleware, services/common/access.py). causes: the routes file's list (reloaded)."""
    api = APIRouter(tags=["alerts"])
    streams = {"open": 0}

    @api.get("/v1/alerts")
    async def list_alerts(
        where: AlertFilter = Depends(alert_filter),
        limit: int = Query(50, ge=1, le=500),
        cursor: str | None = Query(None, description="`next_cursor` of the previous page."),
    ) -> dict[str, Any]:
        """Newest first. `stream_position`: open the stream with `last_event_id` set to it to
        receive every change made after this list was read."""
        position = await store.changes.last()
        try:
            items, next_cursor = await store.page(where.query(), limit, cursor)
        except ValueError as exc:  # a malformed cursor: the request is wrong, not its values
            raise HTTPException(400, str(exc)) from None
        return {"items": items, "next_cursor": next_cursor, "stream_position": position}

    @api.get("/v1/alerts/counts")
    async def counts(where: AlertFilter = Depends(alert_filter)) -> dict[str, Any]:
        """How many alerts match, by severity and by status."""
        return await store.counts(where.query())

    @api.get("/v1/alerts/stream")
    async def stream(
        request: Request,
        where: AlertFilter = Depends(alert_filter),
        last_event_id: int | None = Query(None, description="Resume after this event id (or send Last-Event-ID)."),
    ) -> StreamingResponse:
        """Server-Sent Events: every alert change (`id` = its number); reconnect with Last-Event-ID
        to receive what was missed, also across a notify restart."""
        if streams["open"] >= max_streams:
            raise HTTPException(
                503, f"{max_streams} live streams are open already; try again later", headers={"Retry-After": "10"}
            )
        header = request.headers.get("last-event-id", "")
        resume = int(header) if header.isascii() and header.isdigit() else last_event_id  # "²" is a digit too

        async def counted() -> AsyncIterator[str]:
            streams["open"] += 1
            SSE_CLIENTS.inc()
            try:
                async for text in events(feed, resume, where.matches, stopping):
                    yield text
            finally:
                streams["open"] -= 1
                SSE_CLIENTS.dec()

        return StreamingResponse(
            counted(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @api.get("/v1/alerts/{alert_id}")
    async def get_alert(alert_id: str) -> dict[str, Any]:
        alert = await store.get(alert_id)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return alert

    async def refused(alert_id: str, what: str) -> HTTPException:
        """Why a conditional change did not apply: no such alert, or not in a state that allows it."""
        alert = await store.get(alert_id, {"status": 1, "entries_added": 1})
        if alert is None:
            return HTTPException(404, f"no alert {alert_id!r}")
        if alert.get("entries_added", 0) >= alerts.MAX_ENTRIES_ADDED:
            return HTTPException(409, f"alert {alert_id!r} has {alerts.MAX_ENTRIES_ADDED:,} assignments and findings already")
        return HTTPException(409, f"alert {alert_id!r} is {alert['status']}; {what}")

    async def act(alert_id: str, action: str, by: str, text: str | None, cause: str | None = None) -> dict[str, Any]:
        changed = await store.change(alert_id, *alerts.transition(action, by, text, utcnow(), cause), action)
        if changed is None:
            raise await refused(alert_id, f"it cannot become {action}")
        if action == "resolved":
            await outbox.send_resolved_notices(changed)
        log.info("alert %s %s by %s", alert_id, action, by)
        return alerts.public_view(changed)

    @api.post("/v1/alerts/{alert_id}/ack")
    async def acknowledge(alert_id: str, body: Acknowledge) -> dict[str, Any]:
        """Acknowledge an open alert: someone is on it (recorded with a note)."""
        return await act(alert_id, "acknowledged", body.by, body.note)

    @api.post("/v1/alerts/{alert_id}/resolve")
    async def resolve(alert_id: str, body: Resolve) -> dict[str, Any]:
        """Resolve an open or acknowledged alert with its cause (an id of GET /v1/causes) and a
        note; a cause in words without a note is kept as `other` with the words as the note."""
        try:
            cause, note = resolution(body.cause, body.note, causes())
        except UnknownCause as exc:
            raise HTTPException(422, str(exc)) from None
        return await act(alert_id, "resolved", body.by, note, cause)

    @api.post("/v1/alerts/{alert_id}/assign")
    async def assign(alert_id: str, body: Assign) -> dict[str, Any]:
        """Move an open or acknowledged alert to another assignee (`to`: null, to nobody)."""
        changed = await store.change(alert_id, *alerts.assigned(body.to, body.by, body.note, utcnow()), "assigned")
        if changed is None:
            raise await refused(alert_id, "it cannot be assigned")
        log.info("alert %s assigned to %s by %s", alert_id, body.to, body.by)
        return alerts.public_view(changed)

    @api.post("/v1/alerts/{alert_id}/notes")
    async def add_finding(alert_id: str, body: Finding) -> dict[str, Any]:
        """Add a finding to the alert's investigation log (any state, also after resolution)."""
        changed = await store.change(alert_id, *alerts.noted(body.by, body.text, utcnow()), "noted")
        if changed is None:
            raise await refused(alert_id, "no room for more")
        return alerts.public_view(changed)

    @api.get("/v1/causes")
    async def cause_list() -> dict[str, Any]:
        """The causes a resolve picks from, with their English and Chinese labels."""
        return {"items": [cause.model_dump() for cause in causes()]}

    return api
