"""Ingest: POS/ERP systems post events over HTTP; each is published durably to RabbitMQ.

202 is answered only after the broker confirmed every event of the request, so
an accepted event is never lost; anything else (invalid batch, broker down)
publishes nothing the client is told about as accepted, and a retry with the
same `event_id`s is safe because the rules service deduplicates them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from faststream.rabbit import RabbitExchange

from services.common import metrics as common_metrics
from services.common import mongo
from services.common.access import AccessMiddleware, Keys, refuse_open_bind
from services.common.broker import PublishError, connect_with_retry, follow_nodes, make_broker, publish_all_confirmed
from services.common.events import Event
from services.common.settings import Settings
from services.common.timeutil import utcnow
from services.common.topology import Topology, declare, event_routing_key

from . import metrics, openapi
from .countable import too_late
from .keepable import over_limits
from .parsing import InvalidBatch, accepted_type, parse_body

log = logging.getLogger("dealerwatch.ingest")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    topology = Topology(settings.namespace, settings.partitions)
    broker = make_broker(settings)
    client, db = mongo.database(settings)
    keys = Keys(readers=[], writers=settings.ingest_keys)
    refuse_open_bind("ingest", settings.ingest_host, keys, "DEALERWATCH_INGEST_KEYS")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if keys.open:
            log.warning("DEALERWATCH_INGEST_KEYS is not set: POST /v1/events is open (development mode)")

        async def connect() -> None:
            await connect_with_retry(broker, start=False)
            await declare(broker, topology)
            log.info("connected to the broker; publishing to %s", topology.events.name)
            await follow_nodes(broker, start=False, reconnected=lambda: declare(broker, topology))

        task = asyncio.create_task(connect())
        yield
        task.cancel()
        await broker.stop()
        client.close()

    app = FastAPI(
        title="dealerwatch ingest",
        version="1",
        description="Event intake for POS/ERP systems. See the event contract v1 in the README.",
        lifespan=lifespan,
    )

    async def broker_ready() -> bool:
        return await broker.ping(timeout=0.05)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        broker_up = await broker_ready()
        database_up = await mongo.ping(client)
        ready = broker_up and database_up
        return JSONResponse({"ready": ready, "broker": broker_up, "database": database_up}, status_code=200 if ready else 503)

    @app.post(
        "/v1/events",
        status_code=202,
        openapi_extra=openapi.EVENTS_REQUEST_BODY,
        responses={
            202: {"description": 'Every event was confirmed by the broker: `{"accepted": n}`'},
            401: {"description": "Missing or wrong API key"},
            403: {"description": "Development mode (no keys): the request's Host is not a loopback name"},
            413: {"description": "Body larger than the configured limit"},
            415: {"description": "Content-Type other than application/json or application/x-ndjson"},
            422: {
                "description": "At least one invalid event, or one older than rules can still count for its dealer "
                '(`too late: ...`); nothing was published: `{"errors": [{index, field, message}]}`'
            },
            503: {"description": "Broker unavailable; nothing is accepted, retry later"},
        },
    )
    async def post_events(request: Request) -> JSONResponse:
        # the key and the body's size were checked before it was read (AccessMiddleware)
        content_type = request.headers.get("content-type", "")
        if not accepted_type(content_type):
            detail = f"Content-Type {content_type or '(none)'} is not taken: send application/json or application/x-ndjson"
            metrics.refused("invalid")
            return JSONResponse({"error": detail}, status_code=415)
        body = await request.body()
        window = (settings.earliest_event, utcnow() + dt.timedelta(seconds=settings.max_future_seconds))
        try:
            events = parse_body(body, content_type, settings.ingest_max_batch, window)
        except InvalidBatch as exc:
            metrics.refused("invalid", len(exc.errors))
            return JSONResponse({"errors": [e.as_dict() for e in exc.errors]}, status_code=422)
        try:
            refused = await too_late(db, events) + await over_limits(db, events)
        except Exception as exc:  # noqa: BLE001 - cannot tell what rules can count: accept nothing
            log.error("checking events against what rules keeps failed: %s", exc)
            metrics.refused("unavailable")
            return _unavailable("the database is not reachable")
        if refused:
            late = any("too late" in e.message for e in refused)
            metrics.refused("too late" if late else "over a limit", len(refused))
            return JSONResponse({"errors": [e.as_dict() for e in refused]}, status_code=422)
        if not await broker_ready():
            metrics.refused("unavailable")
            return _unavailable("message broker is not connected")
        # in time order (stable): rules counts an event up to the lateness before its dealer's newest,
        # so a request's own order must not make one of its events too late
        events = sorted(events, key=lambda event: event.occurred_at)
        try:
            with metrics.PUBLISH_SECONDS.time():
                await publish_all_confirmed(broker, _messages(topology, events), timeout=settings.publish_timeout_seconds)
        except PublishError as exc:
            log.error("publishing %d events failed: %s", len(events), exc)
            metrics.refused("unavailable")
            return _unavailable("message broker did not confirm the events")
        metrics.EVENTS_ACCEPTED.inc(len(events))
        return JSONResponse({"accepted": len(events)}, status_code=202)

    openapi.install(app)
    common_metrics.install(app, "ingest")
    public = ("/healthz", "/readyz", "/docs", "/openapi.json")
    scrapers = common_metrics.scrapers(settings)
    app.add_middleware(AccessMiddleware, keys=keys, public=public, max_body=settings.ingest_max_body_bytes, scrapers=scrapers)
    app.add_middleware(metrics.CountRefusals)  # added last: outermost
    return app


def _messages(topology: Topology, events: list[Event]) -> Iterator[tuple[RabbitExchange, str, bytes, str]]:
    for event in events:
        yield (
            topology.events,
            event_routing_key(event.type, event.dealer_id, topology.partitions),
            event.model_dump_json(exclude_none=True).encode(),
            event.event_id,
        )


def _unavailable(reason: str) -> JSONResponse:
    return JSONResponse({"error": f"{reason}; nothing was accepted, retry later"}, status_code=503, headers={"Retry-After": "5"})
