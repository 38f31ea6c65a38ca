"""Alerts: list, counts, the live stream, one alert, and a person's actions (ack, resolve)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from services.common.timeutil import utcnow

from .. import alert as alerts
from ..alert import Acknowledge, Resolve
from ..feed import ChangeFeed
from ..outbox import Outbox
from ..store import AlertStore
from ..stream import events
from .filters import AlertFilter, alert_filter

log = logging.getLogger("dealerwatch.notify")


def router(store: AlertStore, outbox: Outbox, feed: ChangeFeed, stopping: asyncio.Event, max_streams: int) -> APIRouter:
    """Reads need a viewer or operator key, actions an operator key, in production mode (the
    access middleware, services/common/access.py)."""
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
            try:
                async for text in events(feed, resume, where.matches, stopping):
                    yield text
            finally:
                streams["open"] -= 1

        return StreamingResponse(
            counted(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @api.get("/v1/alerts/{alert_id}")
    async def get_alert(alert_id: str) -> dict[str, Any]:
        alert = await store.get(alert_id)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return alert

    async def act(alert_id: str, action: str, by: str, text: str | None) -> dict[str, Any]:
        changed = await store.change(alert_id, *alerts.transition(action, by, text, utcnow()), action)
        if changed is None:
            alert = await store.get(alert_id)
            if alert is None:
                raise HTTPException(404, f"no alert {alert_id!r}")
            raise HTTPException(409, f"alert {alert_id!r} is {alert['status']}; it cannot become {action}")
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
        """Resolve an open or acknowledged alert, with its cause."""
        return await act(alert_id, "resolved", body.by, body.cause)

    return api
