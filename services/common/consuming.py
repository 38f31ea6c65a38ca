"""The consumer side shared by rules and notify: manual acks, raw bodies, bounded retries."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage, RabbitQueue

from .broker import PublishError, cancelled_by_the_client, connect_with_retry
from .deadletter import dead_letter
from .topology import Topology, declare

log = logging.getLogger(__name__)


class Delivered(Protocol):
    """What the helpers below need of a delivery: FastStream's RabbitMessage, or the rules
    workers' own aio-pika deliveries (rules/partitions.Delivery)."""

    @property
    def raw_message(self) -> Any: ...  # aio-pika's IncomingMessage

    @property
    def headers(self) -> Any: ...

    @property
    def message_id(self) -> str | None: ...

    async def ack(self, multiple: bool = False) -> None: ...

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None: ...


STALL_SECONDS = 30.0
_last_delivery: dict[str, float] = {}  # queue name -> monotonic time its handler last got a message
_in_handler: dict[str, int] = {}  # queue name -> handlers running now

# An ack waits until the frame is written; on a channel that a broker restart left behind it can
# wait forever (the fault suite: rules stalled with its 500 prefetched messages never acked)
SETTLE_SECONDS = 5.0


async def settle(operation: Awaitable[None], message: Delivered, what: str) -> None:
    """Ack or nack; if that cannot be done in time or its channel is gone, the broker delivers
    the message again (every consumer recognises it): logged, never raised. Only a cancellation
    of the calling task itself goes through."""
    try:
        await asyncio.wait_for(operation, SETTLE_SECONDS)
    except (Exception, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError) and not cancelled_by_the_client(exc):
            raise
        log.warning("could not %s message %s (%s: %s); it will be redelivered", what, message.message_id, type(exc).__name__, exc)


async def _raw_body(message: RabbitMessage) -> bytes:
    return message.body


def subscribe(
    broker: RabbitBroker, queue: RabbitQueue, handler: Callable[[bytes], Awaitable[None]], *, prefetch: int, title: str
) -> None:
    """`handler(body: bytes)` gets every message undecoded; it acks or rejects it itself (the
    current message is `broker.context.get_local("message")`).

    Messages are handled one at a time, in delivery order: the broker client starts a task per
    delivery, which would let a later message overtake one that waits (on the database, or
    before a retry). In order, a batch's `multiple` ack never covers an unsettled message."""
    turn = asyncio.Lock()  # FIFO: waiters are served in the order they arrived
    _last_delivery[queue.name] = time.monotonic()
    _in_handler[queue.name] = 0

    async def in_order(body: bytes) -> None:
        _last_delivery[queue.name] = time.monotonic()
        _in_handler[queue.name] += 1
        try:
            async with turn:
                await handler(body)
        finally:
            _in_handler[queue.name] -= 1

    in_order.__name__ = getattr(handler, "__name__", "handler")
    broker.subscriber(
        queue,
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_body,
        channel=Channel(prefetch_count=prefetch),
        title=title,
    )(in_order)


REQUEUE_PAUSE_SECONDS = 1.0  # before a message that could not be dead-lettered goes back


async def reject(broker: RabbitBroker, topology: Topology, message: Delivered, reason: str, *, stage: str) -> None:
    """Dead-letter with the reason, then ack: the message is kept there, never lost or looping.
    If the broker does not take the dead letter (its queue unbound, a nack, no confirm), the
    message is not acked but requeued after a pause, and dead-lettered once the broker takes it."""
    log.warning("dead-lettering message %s: %s", message.message_id, reason)
    try:
        await dead_letter(broker, topology, message, reason, stage=stage)
    except PublishError as exc:
        log.error("could not dead-letter message %s (%s): requeued, to be dead-lettered again", message.message_id, exc)
        await asyncio.sleep(REQUEUE_PAUSE_SECONDS)
        await settle(message.nack(requeue=True), message, "requeue the undead-lettered")
        return
    await settle(message.ack(), message, "ack the dead-lettered")  # if not: dead-lettered again


async def retry_or_reject(
    broker: RabbitBroker, topology: Topology, message: Delivered, exc: BaseException, *, max_attempts: int, stage: str
) -> None:
    """A handler failure: requeue after a growing pause, until `max_attempts`, then dead-letter."""
    attempt = int((message.headers or {}).get("x-delivery-count", 0)) + 1
    if attempt >= max_attempts:
        await reject(broker, topology, message, f"failed {attempt} times: {type(exc).__name__}: {exc}", stage=stage)
        return
    log.exception("handling message %s failed (attempt %d)", message.message_id, attempt)
    await asyncio.sleep(min(0.1 * 2**attempt, 5.0))  # no hot loop
    await settle(message.nack(requeue=True), message, "requeue")


async def ack_batch(messages: Sequence[Delivered]) -> None:
    """One `multiple` ack per channel, on its newest message: messages are handled one at a time
    in delivery order (subscribe), so every earlier delivery on that channel is in this batch,
    an earlier one, or was already settled (dead-lettered or requeued). One frame instead of one
    per message (acking one by one cost ~1 ms each, more than a batched database write).
    Each consumer needs its own channel, or a `multiple` ack settles another consumer's
    messages: `subscribe` gives each one, provided the queues are declared after
    `broker.start()` (see topology.declare)."""
    newest: dict[int, Delivered] = {}
    for message in messages:
        newest[id(message.raw_message.channel)] = message
    for message in newest.values():
        await settle(message.ack(multiple=True), message, "ack a batch up to")


async def reconnect_when_stalled(
    broker: RabbitBroker,
    topology: Topology,
    queues: list[RabbitQueue],
    *,
    holding: Callable[[], bool],
    stall_seconds: float = STALL_SECONDS,
) -> None:
    """Watch for a consumer that the broker delivers to while nothing reaches its handler. Seen in
    the fault suite after a RabbitMQ restart, one run in two: the broker listed the restored
    consumer with 500 messages delivered and unacknowledged, none was handed to rules, and
    nothing said so. When messages wait in a queue, its handler got nothing for `stall_seconds`,
    none is running and the service holds no delivery unsettled (`holding`), the connection is
    made again: the broker takes back what the old one held and delivers it again (every
    consumer recognises a message it already counted)."""
    while True:
        await asyncio.sleep(stall_seconds / 3)
        now = time.monotonic()
        quiet = [q for q in queues if now - _last_delivery.get(q.name, now) > stall_seconds and not _in_handler.get(q.name)]
        if not quiet or holding():
            continue
        try:
            waiting = {q.name: (await (await broker.declare_queue(q)).declare()).message_count for q in quiet}
        except Exception:  # noqa: BLE001 - the broker is away: its own reconnection handles that
            continue
        stalled = [name for name, count in waiting.items() if count]
        if not stalled or holding():
            continue
        log.error(
            "no message reached the consumer of %s for %.0fs while %s wait: connecting again", stalled, stall_seconds, waiting
        )
        await broker.stop()
        await connect_with_retry(broker, start=True)
        await declare(broker, topology)
        for name in stalled:
            _last_delivery[name] = time.monotonic()
