"""Notify: stores alerts, sends them to receivers, and serves them over HTTP (the API and the
operations board). This module only wires the parts together and runs their loops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY

from services.common import metrics as common_metrics
from services.common.access import AccessMiddleware, Keys, refuse_open_bind
from services.common.broker import connect_with_retry, follow_nodes, make_broker
from services.common.consuming import reconnect_when_stalled
from services.common.deadletter import dead_letter_body
from services.common.health import Health, readiness
from services.common.logs import dump_tasks_on_signal
from services.common.settings import Settings
from services.common.topology import Topology, declare, routing_key

from . import board, metrics
from .api import alerts, reports, silences
from .api import policy as policy_api
from .archive import EventArchive
from .channels.base import receiver_client
from .consumer import SignalConsumer
from .dealers import api as dealers
from .dealers import reports as dealer_reports
from .dealers.evaluations import Evaluations
from .dealers.feedback import FeedbackRecords
from .dealers.file import DealerFile
from .dealers.network import Network
from .delivery import DeliveryWorker
from .feed import ChangeFeed
from .leader import Lease
from .outbox import Outbox
from .router import Router
from .signals import SignalIntake
from .silences import SilenceStore
from .store import AlertStore
from .stream import publish_changes
from .support import api as support_api
from .support.evaluations import SupportEvaluations
from .support.priorities import Priorities

log = logging.getLogger("dealerwatch.notify")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    store = AlertStore(settings)
    broker = make_broker(settings)
    http = httpx.AsyncClient(follow_redirects=False)  # to the rules service
    router = Router(settings, receiver_client(settings.receivers_allow_private))
    topology = Topology(settings.namespace, settings.partitions)

    async def dead_letter_delivery(alert: dict[str, Any], delivery: dict[str, Any]) -> None:
        body = json.dumps({"alert": alert, "delivery": delivery}, default=str, ensure_ascii=False).encode()
        reason = f"delivery to {delivery['receiver']} failed {delivery['attempts']} times: {delivery['last_error']}"
        message_id = f"delivery:{alert['alert_id']}:{delivery['receiver']}:{delivery.get('kind')}"
        key = routing_key("delivery", delivery["receiver"])
        await dead_letter_body(broker, topology, body, key, message_id, reason, stage="notify.delivery")

    health = Health()
    outbox = Outbox(store.collection)
    silences_ = SilenceStore(store.db)
    evaluations = Evaluations(store.db)
    priorities, support_evaluations = Priorities(store), SupportEvaluations(store.db)
    worker = DeliveryWorker(outbox, router, settings, on_failed=dead_letter_delivery)
    signals = SignalConsumer(
        broker,
        SignalIntake(store, outbox, silences_),
        evaluations,
        (priorities, support_evaluations),
        worker,
        router,
        settings,
        health,
    )
    dealer_file = DealerFile(store.db, broker, settings, http, health)
    event_archive = EventArchive(store.db, broker, settings, health)
    lease = Lease(store.db, "alerts-exchange")
    network = Network(dealer_file.collection)
    feedback_records = FeedbackRecords(dealer_file.collection)
    feed = ChangeFeed(store.changes)
    state = {"consuming": False}
    stopping = asyncio.Event()
    keys = Keys(readers=settings.viewer_keys, writers=settings.api_keys)
    refuse_open_bind("notify", settings.notify_host, keys, "DEALERWATCH_API_KEYS (and DEALERWATCH_VIEWER_KEYS)")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if keys.open:
            log.warning("no DEALERWATCH_API_KEYS or DEALERWATCH_VIEWER_KEYS: notify is open (development mode, loopback only)")
        await store.ensure_indexes()
        await outbox.ensure_indexes()
        await dealer_file.ensure_indexes()
        await event_archive.ensure_indexes()
        await network.ensure_indexes()
        await feedback_records.ensure_indexes()
        await evaluations.ensure_indexes()
        await priorities.ensure_indexes()
        await support_evaluations.ensure_indexes()
        await lease.ensure()
        dump_tasks_on_signal()

        async def consume() -> None:
            await connect_with_retry(broker, start=False)
            await broker.start()  # first: each consumer declares its queue on its own channel
            await declare(broker, topology)
            state["consuming"] = True
            targets = [channel.target() for channel in router.channels.values()]
            log.info("consuming alert signals; %d receiver(s): %s", len(targets), ", ".join(targets) or "none")
            watched = [topology.notify_queue, topology.dealer_file_queue, topology.archive_queue]
            holding = lambda: dealer_file.holding() or signals.holding() or event_archive.holding()  # noqa: E731
            await asyncio.gather(
                reconnect_when_stalled(broker, topology, watched, holding=holding),
                follow_nodes(broker, start=True, reconnected=lambda: declare(broker, topology)),
            )

        loops = {
            "consumers": consume(),
            "alert signals": signals.run(),
            "delivery": worker.run(),
            "reminders and escalation": worker.run_schedules(),
            "dealer file": dealer_file.run(),
            "events archive": event_archive.run(),
            "alerts exchange": publish_changes(store, feed, broker, topology, lambda: state["consuming"], lease, health),
            "routes file": router.watch(),
            "change feed": feed.run(),
            # the lease holder publishes the change log and follows it for the support priorities
            "support priorities": priorities.follow(feed, lease, lambda: state["consuming"], health),
        }
        resting = metrics.register(worker.receivers)
        tasks = [health.watch(name, asyncio.create_task(loop)) for name, loop in loops.items()]
        # every dealer's sort key read once now, not by the first person asking for the ranking
        warm_up = asyncio.create_task(priorities.ranking.refresh())
        warm_up.add_done_callback(lambda task: task.cancelled() or task.exception())  # (retried on the first ask)
        yield
        state["consuming"] = False
        stopping.set()
        warm_up.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        REGISTRY.unregister(resting)
        with contextlib.suppress(Exception):  # the database may be gone already
            await lease.release()
        await broker.stop()
        await http.aclose()
        await router.close()
        store.close()

    app = FastAPI(title="dealerwatch notify", version="1", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Ready: connected, and no loop stuck (signals not stored, the dealer file failing); the
        details with a reading key."""
        broker_up = state["consuming"] and await broker.ping(timeout=0.05)
        database_up = await store.ping()
        problems = health.problems()
        ready = broker_up and database_up and not problems
        body = {"broker": broker_up, "database": database_up, "problems": problems}
        return readiness(ready, body, keys.allows(request.headers.get("authorization", ""), write=False))

    app.include_router(alerts.router(store, outbox, feed, stopping, settings.max_streams, lambda: router.causes))
    app.include_router(silences.router(store, silences_, settings.silence_max_days))
    dealer_support = support_api.dealer_support(priorities, support_evaluations)
    app.include_router(dealers.router(store, dealer_file, evaluations, network, feedback_records, dealer_support))
    app.include_router(policy_api.router(store, dealer_file))
    app.include_router(reports.router(dealer_file, store))
    app.include_router(dealer_reports.router(dealer_file, network, feedback_records, evaluations))
    app.include_router(support_api.router(priorities, support_evaluations, settings, http))
    board.mount(app, auth_required=not keys.open, causes=lambda: router.causes)
    common_metrics.install(app, "notify", before=lambda: metrics.read(store))
    scrapers = common_metrics.scrapers(settings)
    app.add_middleware(AccessMiddleware, keys=keys, public=PUBLIC, max_body=settings.notify_max_body_bytes, scrapers=scrapers)
    return app


# open in production mode too: health for orchestrators, the API's description, the board's page
# (its data comes from the API, with the key typed into it)
PUBLIC = ("/healthz", "/readyz", "/docs", "/openapi.json", "/", "/board/*")
