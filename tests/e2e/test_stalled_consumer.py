"""A consumer that the broker delivers to while nothing reaches its handler is connected again
(real RabbitMQ). The fault is injected where it was seen: after a broker restart, the client's
channel held no callback for the restored consumer, so the broker's deliveries were dropped
unseen and 500 messages stayed unacknowledged with every health check green."""

from __future__ import annotations

import asyncio

from helpers import TEST_PARTITIONS

from services.common.broker import make_broker, publish_each
from services.common.consuming import ack_batch, reconnect_when_stalled, subscribe
from services.common.settings import Settings
from services.common.topology import Topology, declare


def test_a_consumer_whose_deliveries_vanish_is_connected_again(amqp_url, namespace):
    async def scenario() -> tuple[int, int]:
        topology = Topology(namespace, TEST_PARTITIONS)
        broker = make_broker(Settings(amqp_url=amqp_url, namespace=namespace, partitions=TEST_PARTITIONS))
        handled: list = []

        async def handler(body: bytes) -> None:
            message = broker.context.get_local("message")
            handled.append(body)
            await ack_batch([message])

        subscribe(broker, topology.notify_queue, handler, prefetch=20, title="test")
        await broker.start()
        await declare(broker, topology)

        async def publish(first: int, count: int) -> None:
            messages = [(topology.alert_signals, "k", f"{n}".encode(), f"m-{n}") for n in range(first, first + count)]
            await publish_each(broker, messages, timeout=5)

        await publish(0, 10)
        for _ in range(100):
            if len(handled) == 10:
                break
            await asyncio.sleep(0.05)
        # the fault: the channel forgets the consumer's callback (deliveries are dropped unseen)
        channel = (await broker.declare_queue(topology.notify_queue)).channel
        underlay = await channel.get_underlay_channel()
        underlay.consumers.clear()
        await publish(10, 60)  # 20 delivered into nothing (the prefetch), 40 left waiting
        await asyncio.sleep(1.0)
        vanished = 70 - len(handled)

        watch = asyncio.create_task(
            reconnect_when_stalled(broker, topology, [topology.notify_queue], holding=lambda: False, stall_seconds=1.5)
        )
        for _ in range(200):
            if len(set(handled)) == 70:
                break
            await asyncio.sleep(0.05)
        watch.cancel()
        await broker.stop()
        return vanished, len(set(handled))

    vanished, handled = asyncio.run(scenario())
    assert vanished == 60  # the fault is real: nothing more reached the handler
    assert handled == 70  # every message reached it after the reconnection, none lost
