"""Notify: stores alerts, sends them to receivers, and serves them over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from typing import Literal

import httpx
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from services.common.auth import bearer_ok, key_bytes
from services.common.broker import connect_with_retry, make_broker, publish_confirmed
from services.common.settings import Settings
from services.common.topology import ERROR_HEADER, STAGE_HEADER, Topology, declare

from .consumer import SignalConsumer
from .dealerfile import DealerFile
from .router import Router
from .delivery import DeliveryWorker
from .leader import Lease
from .lifecycle import Acknowledge, Expire, Resolve
from .silences import NewSilence
from .store import AlertStore, utcnow
from .stream import events, publish_changes

log = logging.getLogger("dealerwatch.notify")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    store = AlertStore(settings)
    broker = make_broker(settings)
    http = httpx.AsyncClient(follow_redirects=False)
    router = Router(settings, http)
    topology = Topology(settings.namespace)

    async def dead_letter_delivery(alert: dict, delivery: dict) -> None:
        body = json.dumps({"alert": alert, "delivery": delivery}, default=str, ensure_ascii=False).encode()
        reason = f"delivery to {delivery['receiver']} failed {delivery['attempts']} times: {delivery['last_error']}"
        await publish_confirmed(broker, topology.dead_letter, f"delivery.{delivery['receiver']}", body,
                                message_id=f"delivery:{alert['alert_id']}:{delivery['receiver']}:{delivery.get('kind')}",
                                headers={ERROR_HEADER: reason, STAGE_HEADER: "notify.delivery"})

    worker = DeliveryWorker(store, router, settings, on_failed=dead_letter_delivery)
    SignalConsumer(broker, store, worker, router, settings)
    dealer_file = DealerFile(store.db, broker, settings, http)
    lease = Lease(store.db, "alerts-exchange")
    state = {"consuming": False}
    stopping = asyncio.Event()
    api_keys = key_bytes(settings.api_keys)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if not api_keys:
            log.warning("DEALERWATCH_API_KEYS is not set: alert actions are open (development mode)")
        await store.ensure_indexes()
        await dealer_file.ensure_indexes()
        sender = asyncio.create_task(worker.run())
        schedules = asyncio.create_task(worker.run_schedules())
        timeline = asyncio.create_task(dealer_file.run())

        async def consume() -> None:
            await connect_with_retry(broker, start=False)
            await broker.start()  # first: each consumer declares its queue on its own channel
            await declare(broker, topology)
            state["consuming"] = True
            targets = [channel.target() for channel in router.channels.values()]
            log.info("consuming alert signals; %d receiver(s): %s", len(targets), ", ".join(targets) or "none")

        consumer = asyncio.create_task(consume())
        await lease.ensure()
        exchange = asyncio.create_task(publish_changes(store, broker, topology, lambda: state["consuming"], lease))
        routes = asyncio.create_task(router.watch())
        yield
        state["consuming"] = False
        stopping.set()
        tasks = (consumer, sender, schedules, timeline, exchange, routes)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):  # the database may be gone already
            await lease.release()
        await broker.stop()
        await http.aclose()
        store.close()

    app = FastAPI(title="dealerwatch notify", version="1", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        broker_up = state["consuming"] and await broker.ping(timeout=0.05)
        database_up = await store.ping()
        ready = broker_up and database_up
        return JSONResponse({"ready": ready, "broker": broker_up, "database": database_up}, status_code=200 if ready else 503)

    @app.get("/v1/alerts")
    async def list_alerts(
        dealer_id: str | None = None,
        rule_id: str | None = None,
        status: Literal["open", "acknowledged", "resolved"] | None = None,
        since: dt.datetime | None = Query(None, description="Only alerts first seen at or after this time (RFC 3339)."),
        limit: int = Query(50, ge=1, le=500),
        cursor: str | None = Query(None, description="`next_cursor` of the previous page."),
    ) -> dict:
        filters: dict = {}
        for key, value in (("dealer_id", dealer_id), ("rule_id", rule_id), ("status", status)):
            if value is not None:
                filters[key] = value
        if since is not None:
            if since.tzinfo is None:
                raise HTTPException(422, "since needs a time zone offset, e.g. 2026-01-01T00:00:00Z")
            filters["first_seen_at"] = {"$gte": since}
        try:
            items, next_cursor = await store.list(filters, limit, cursor)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"items": items, "next_cursor": next_cursor}

    def authorize(authorization: str | None) -> None:
        if not bearer_ok(authorization or "", api_keys):
            raise HTTPException(401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"})

    async def act(alert_id: str, action: str, by: str, text: str | None) -> dict:
        alert, changed = await store.act(alert_id, action, by, text)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        if not changed:
            raise HTTPException(409, f"alert {alert_id!r} is {alert['status']}; it cannot become {action}")
        log.info("alert %s %s by %s", alert_id, action, by)
        return alert

    @app.post("/v1/alerts/{alert_id}/ack")
    async def acknowledge(alert_id: str, body: Acknowledge, authorization: str | None = Header(default=None)) -> dict:
        """Acknowledge an open alert: someone is on it (recorded with a note)."""
        authorize(authorization)
        return await act(alert_id, "acknowledged", body.by, body.note)

    @app.post("/v1/alerts/{alert_id}/resolve")
    async def resolve(alert_id: str, body: Resolve, authorization: str | None = Header(default=None)) -> dict:
        """Resolve an open or acknowledged alert, with its cause."""
        authorize(authorization)
        return await act(alert_id, "resolved", body.by, body.cause)

    @app.post("/v1/silences", status_code=201)
    async def create_silence(body: NewSilence, authorization: str | None = Header(default=None)) -> dict:
        """Mute matching new alerts between starts_at and ends_at (they are still stored, marked)."""
        authorize(authorization)
        silence = await store.silences.create(body, utcnow())
        log.info("silence %s by %s: %s", silence["silence_id"], body.created_by, body.comment)
        return silence

    @app.get("/v1/silences")
    async def list_silences(active: bool = False) -> dict:
        return {"items": await store.silences.list(utcnow() if active else None)}

    @app.post("/v1/silences/{silence_id}/expire")
    async def expire_silence(silence_id: str, body: Expire, authorization: str | None = Header(default=None)) -> dict:
        authorize(authorization)
        silence = await store.silences.expire(silence_id, body.by, utcnow())
        if silence is None:
            raise HTTPException(404, f"no silence {silence_id!r}")
        return silence

    @app.get("/v1/dealers")
    async def dealers(sort: Literal["severity", "age"] = "severity") -> dict:
        """Dealers with open (or acknowledged) alerts: most severe first, or longest open first."""
        rows = await store.dealers_with_open_alerts()
        rank = {"info": 0, "warning": 1, "critical": 2}
        if sort == "severity":
            rows.sort(key=lambda r: (-rank[r["highest_severity"]], r["oldest_open_since"]))
        else:
            rows.sort(key=lambda r: r["oldest_open_since"])
        return {"items": rows}

    @app.get("/v1/dealers/{dealer_id}")
    async def dealer(dealer_id: str) -> dict:
        """The dealer's file: measures the rules keep, open and past alerts, promotions with plan,
        approval, spend and evaluation, and the visits timeline."""
        rules_view, rules_error = await dealer_file.rules_view(dealer_id)
        open_alerts, _ = await store.list({"dealer_id": dealer_id, "status": {"$in": ["open", "acknowledged"]}}, 100, None)
        past_alerts, _ = await store.list({"dealer_id": dealer_id, "status": "resolved"}, 100, None)
        evaluations = {e["promotion_id"]: e for e in await store.evaluations(dealer_id)}
        visits = await dealer_file.timeline(dealer_id, ["visit"])
        promotion_events = await dealer_file.timeline(dealer_id, ["promotion.planned", "promotion.approved", "promotion.spend", "promotion.ended"])
        if not (rules_view or open_alerts or past_alerts or visits or promotion_events):
            raise HTTPException(404, f"nothing is known of dealer {dealer_id!r}")
        promotions: dict[str, dict] = {}
        for event in reversed(promotion_events):
            promotions.setdefault(event["promotion_id"], {"promotion_id": event["promotion_id"], "events": []})["events"].append(event)
        for kept in (rules_view or {}).get("promotions", []):
            promotions.setdefault(kept["promotion_id"], {"promotion_id": kept["promotion_id"], "events": []}).update(kept)
        for promotion_id, promotion in promotions.items():
            promotion["evaluation"] = evaluations.get(promotion_id)
        return {
            "dealer_id": dealer_id,
            "measures": (rules_view or {}).get("measures"),
            "measures_at": (rules_view or {}).get("at"),
            "measures_error": rules_error,
            "open_alerts": open_alerts,
            "past_alerts": past_alerts,
            "promotions": list(promotions.values()),
            "visits": visits,
        }

    @app.get("/v1/promotion-evaluations")
    async def promotion_evaluations(dealer_id: str) -> dict:
        """Every ended promotion of a dealer with its effectiveness evaluation (P, S, X, ratio, verdict)."""
        return {"items": await store.evaluations(dealer_id)}

    @app.get("/v1/alerts/stream")
    async def stream(
        request: Request,
        dealer_id: str | None = None,
        rule_id: str | None = None,
        status: Literal["open", "acknowledged", "resolved"] | None = None,
        last_event_id: int | None = Query(None, description="Resume after this event id (or send Last-Event-ID)."),
    ) -> StreamingResponse:
        """Server-Sent Events: every alert change (`id` = its number); reconnect with Last-Event-ID
        to receive what was missed, also across a notify restart."""
        header = request.headers.get("last-event-id")
        resume = int(header) if header and header.isdigit() else last_event_id
        filters = {k: v for k, v in (("dealer_id", dealer_id), ("rule_id", rule_id), ("status", status)) if v is not None}
        return StreamingResponse(
            events(store.changes, resume, filters, stopping),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/alerts/{alert_id}")
    async def get_alert(alert_id: str) -> dict:
        alert = await store.get(alert_id)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return alert

    return app

