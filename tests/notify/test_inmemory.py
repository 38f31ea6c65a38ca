"""Fast checks of the notify consumer on FastStream's in-memory broker (on top of the
real-broker suites, not instead of them); the database is the real MongoDB-protocol server."""

from __future__ import annotations

import asyncio
import datetime as dt

from faststream.rabbit import TestRabbitBroker

from services.common.alerts import AlertSignal
from services.common.broker import make_broker
from services.common.health import Health
from services.common.settings import Settings
from services.common.topology import Topology
from services.notify.consumer import SignalConsumer
from services.notify.dealers.evaluations import Evaluations
from services.notify.delivery import DeliveryWorker
from services.notify.outbox import Outbox
from services.notify.router import Router
from services.notify.signals import SignalIntake
from services.notify.silences import SilenceStore
from services.notify.store import AlertStore
from services.notify.support.evaluations import SupportEvaluations
from services.notify.support.priorities import Priorities


def make_signal(count: int, state: str = "firing") -> AlertSignal:
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    return AlertSignal(
        alert_id="m1",
        state=state,
        rule_id="visit-overdue",
        dealer_id="D-1",
        severity="warning",
        summary=f"n={count}",
        policy_version="v",
        opened_at=at,
        at=at + dt.timedelta(hours=count),
        firing_count=count,
    )


async def test_consumer_stores_once_and_keeps_the_newest(mongo_url, namespace):
    settings = Settings(mongo_url=mongo_url, mongo_db=namespace, namespace=namespace)
    broker = make_broker(settings)
    store = AlertStore(settings)
    await store.ensure_indexes()
    router = Router(settings, None)
    outbox = Outbox(store.collection)
    worker = DeliveryWorker(outbox, router, settings)
    intake = SignalIntake(store, outbox, SilenceStore(store.db))
    support = (Priorities(store), SupportEvaluations(store.db))
    consumer = SignalConsumer(broker, intake, Evaluations(store.db), support, worker, router, settings, Health())
    queue = Topology(namespace).notify_queue
    storing = asyncio.create_task(consumer.run())
    async with TestRabbitBroker(broker) as test_broker:
        for count in (1, 3, 2, 3):
            await test_broker.publish(make_signal(count).model_dump_json(), queue=queue)
        await test_broker.publish(make_signal(3, "resolved").model_dump_json(), queue=queue)
        for _ in range(200):  # stored by the consumer's own loop: until the last signal is in
            items, _ = await store.page({}, 10, None)
            if items and items[0]["status"] == "resolved":
                break
            await asyncio.sleep(0.05)
    storing.cancel()
    items, _ = await store.page({}, 10, None)
    assert len(items) == 1
    assert items[0]["count"] == 3 and items[0]["summary"] == "n=3" and items[0]["status"] == "resolved"
    store.close()
